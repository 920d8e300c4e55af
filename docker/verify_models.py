"""Prove single-partition NNAPI delegation twice: with the real delegate code and with our rules.

    python docker/verify_models.py --probe PATH/nnapi_probe --models DIR --api-levels 29 30 --out DIR

For every ``*.tflite`` in ``--models`` and every API level, runs

* the probe (docker/probe: TFLite's own StatefulNnApiDelegate of the patched tree over the NnApiHandler
  test double) and
* ``tools/check_delegation.py --delegate patched --expect-single-partition --json`` (our Python model of
  the same rules, for the TF release given with ``--tf-version``),

compares the two execution plans node by node (type and op indices, in run order), and writes
``report.json`` and ``report.md`` into ``--out`` (atomically). Exit 0 when every model is one
TfLiteNnapiDelegate node under both and they agree, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from deeplab_nnapi.fileio import atomic_write  # noqa: E402  (the repository's own package)

DEFAULT_CHECK = f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'tools' / 'check_delegation.py'))}"
DELEGATE = "TfLiteNnapiDelegate"


class Usage(Exception):
    pass


def plan_of(cmd: List[str], what: str) -> List[dict]:
    """Run ``cmd``; return its JSON ``nodes`` as [{"type", "ops"}], or raise with one line."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise Usage(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what}: timed out") from None
    # check_delegation exits 1 when the model is not one partition: its plan is still the answer.
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{what}: exit {proc.returncode}: {last}")
    try:
        nodes = json.loads(proc.stdout)["nodes"]
        return [{"type": str(n["type"]), "ops": sorted(int(i) for i in n["ops"])} for n in nodes]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{what}: output is not a plan ({exc})") from None


def single(nodes: List[dict]) -> bool:
    return len(nodes) == 1 and nodes[0]["type"] == DELEGATE


def describe(nodes: Optional[List[dict]]) -> str:
    if nodes is None:
        return "-"
    parts = []
    for n in nodes:
        ops = n["ops"]
        contiguous = len(ops) > 1 and ops == list(range(ops[0], ops[-1] + 1))
        span = f"{ops[0]}-{ops[-1]}" if contiguous else ",".join(map(str, ops))
        parts.append(f"{n['type']}[{span}]" if n["type"] == DELEGATE else f"{n['type']}({span})")
    return " ".join(parts)


def verify(models: Sequence[Path], api_levels: Sequence[int], probe: List[str], check: List[str],
           tf_version: Optional[str] = None) -> dict:
    rows = []
    for model in models:
        for api in api_levels:
            row = {"model": model.name, "android_api": api}
            try:
                row["probe"] = plan_of(probe + ["--model", str(model), "--android-api", str(api)],
                                       f"probe {model.name} API {api}")
            except RuntimeError as exc:
                row["probe"], row["probe_error"] = None, str(exc)
            try:
                args = [str(model), "--delegate", "patched", "--android-api", str(api),
                        "--expect-single-partition", "--json"]
                args += ["--tf-version", tf_version] if tf_version else []
                row["check"] = plan_of(check + args, f"check_delegation {model.name} API {api}")
            except RuntimeError as exc:
                row["check"], row["check_error"] = None, str(exc)
            row["agree"] = row["probe"] is not None and row["probe"] == row["check"]
            row["single_partition"] = bool(row["agree"] and single(row["probe"]))
            row["ok"] = row["single_partition"]
            rows.append(row)
            status = "ok" if row["ok"] else "FAIL"
            print(f"verify: {model.name} API {api}: probe {describe(row['probe'])} | "
                  f"check {describe(row['check'])} -> {status}", file=sys.stderr, flush=True)
    return {"ok": bool(rows) and all(r["ok"] for r in rows), "results": rows}


def markdown(report: dict) -> str:
    lines = ["# NNAPI delegation report", "",
             "Probe = TFLite's StatefulNnApiDelegate (patched tree) over the NnApiHandler test double;",
             "check = `tools/check_delegation.py --delegate patched`.", "",
             "| model | API | probe | check | agree | one partition |", "|---|---|---|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['model']} | {r['android_api']} | {describe(r['probe'])} | "
                     f"{describe(r['check'])} | {'yes' if r['agree'] else 'NO'} | "
                     f"{'yes' if r['single_partition'] else 'NO'} |")
    errors = [r.get(k) for r in report["results"] for k in ("probe_error", "check_error") if r.get(k)]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in errors]
    lines += ["", f"Result: **{'PASS' if report['ok'] else 'FAIL'}**", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", required=True, help="the nnapi_probe executable (or a command line)")
    ap.add_argument("--check", default=DEFAULT_CHECK,
                    help="command line of check_delegation (default: %(default)s)")
    ap.add_argument("--models", required=True, type=Path, help="directory with the .tflite models")
    ap.add_argument("--api-levels", nargs="+", type=int, default=[29], metavar="N")
    ap.add_argument("--tf-version", metavar="2.N", help="TF release the probe was built from (for the check)")
    ap.add_argument("--out", required=True, type=Path, help="directory for report.json and report.md")
    args = ap.parse_args(argv)
    try:
        models = sorted(args.models.glob("*.tflite"))
        if not models:
            raise Usage(f"no .tflite models in {args.models}")
        bad = [a for a in args.api_levels if not 27 <= a <= 35]
        if bad:
            raise Usage(f"API level {bad[0]} outside 27..35")
        report = verify(models, args.api_levels, shlex.split(args.probe), shlex.split(args.check),
                        args.tf_version)
    except Usage as exc:
        print(f"verify_models: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write(args.out / "report.md", markdown(report).encode())
    n_ok = sum(r["ok"] for r in report["results"])
    print(f"verify_models: {n_ok}/{len(report['results'])} model x API checks agree on one partition; "
          f"report in {args.out}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
