"""Prove single-partition NNAPI delegation twice: with the real delegate and with our rules, side by side.

    python docker/verify_models.py --probe PATH/nnapi_probe --models DIR --api-levels 29 30 \
        [--sources sources.json] [--weights weights.json] --out DIR

For every ``*.tflite`` in ``--models`` and every API level:

* the real delegate: ``nnapi_probe`` (TFLite's own StatefulNnApiDelegate of the patched tree of the sources
  stage over a stub NNAPI device, built by ``tools/probe_delegation.py --build-only``) runs every model and
  level in one process (``deeplab_nnapi.probe.run.run_binary``); each answer becomes a plan
  (``run.to_result``), or a failure (the delegate could not prepare the model, or the probe crashed);
* the predictor: ``deeplab_nnapi.nnapi.delegation.plan_model`` (what ``tools/check_delegation.py --delegate
  patched`` prints), with the rules of the tree's release (``probe.crosscheck.predictor_release``: the
  tree's own TF 2.N, the newest for LiteRT);
* ``probe.crosscheck.differences``: node for node and refusal for refusal.

A case is ok when both agree and the plan is one TfLiteNnapiDelegate node. Writes ``report.json`` and
``report.md`` into ``--out`` (atomically); they name the tree (layout, version, commit, the patch applied),
the models tree and where the weights came from (``--sources``, ``--weights``). Exit 0 when every case is
ok, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from deeplab_nnapi.errors import ToolError  # noqa: E402
from deeplab_nnapi.fileio import atomic_write  # noqa: E402
from deeplab_nnapi.nnapi.delegation import (  # noqa: E402
    DELEGATE_NODE_TYPE,
    DelegateOptions,
    plan_model,
)
from deeplab_nnapi.nnapi.rules import load_rules  # noqa: E402
from deeplab_nnapi.nnapi.tflite_model import format_ranges, load_model  # noqa: E402
from deeplab_nnapi.probe.crosscheck import differences, predictor_release  # noqa: E402
from deeplab_nnapi.probe.run import ProbeFailure, ProbeSettings, run_binary, to_result  # noqa: E402


class Usage(Exception):
    pass


def nodes_of(result) -> Optional[List[dict]]:
    if isinstance(result, ProbeFailure):
        return None
    return [{"type": n.type, "ops": sorted(int(i) for i in n.ops)} for n in result.nodes]


def describe(nodes: Optional[List[dict]]) -> str:
    if nodes is None:
        return "-"
    parts = []
    for n in nodes:
        span = format_ranges(n["ops"]).replace(" ", "")
        parts.append(f"{n['type']}[{span}]" if n["type"] == DELEGATE_NODE_TYPE else f"{n['type']}({span})")
    return " ".join(parts)


def single(nodes: Optional[List[dict]]) -> bool:
    return bool(nodes) and len(nodes) == 1 and nodes[0]["type"] == DELEGATE_NODE_TYPE


def tree_line(tf: Dict[str, Any]) -> str:
    """One line naming the tree: where from, layout, version, commit, patch variant."""
    if not tf:
        return "not recorded"
    patches = ", ".join(f"`{p.get('file')}` ({p.get('strategy')}, {p.get('state')})"
                        for p in tf.get("patches") or []) or "none"
    commit = tf.get("commit") or "unknown"
    return (f"{tf.get('name')} ({tf.get('origin')}): layout {tf.get('layout')}, version "
            f"{tf.get('version') or 'unknown'}, commit {commit} ({tf.get('commit_source')}); patch {patches}")


def verify(models: Sequence[Path], api_levels: Sequence[int], probe: Path,
           source: Optional[Dict[str, Any]] = None) -> dict:
    source = source or {}
    release = predictor_release(source)
    loaded = [load_model(m) for m in models]
    cases = run_binary(probe, list(models), list(api_levels), ProbeSettings())
    rows = []
    k = 0
    for path, model in zip(models, loaded):
        for api in api_levels:
            options = DelegateOptions(android_api=api, delegate="patched")
            real = to_result(cases[k], model, options, source)
            k += 1
            rules = DelegateOptions(android_api=api, delegate="patched", tf_version=release)
            predicted = plan_model(model, rules)
            diffs = differences(predicted, real)
            row = {"model": path.name, "android_api": api, "probe": nodes_of(real),
                   "check": nodes_of(predicted), "agree": not diffs, "differences": diffs}
            if isinstance(real, ProbeFailure):
                row["probe_error"] = f"{real.status}: {real.message}"
            row["single_partition"] = bool(row["agree"] and single(row["probe"]))
            row["ok"] = row["single_partition"]
            rows.append(row)
            print(f"verify: {path.name} API {api}: probe {describe(row['probe'])} | check "
                  f"{describe(row['check'])} -> {'ok' if row['ok'] else 'FAIL'}", file=sys.stderr, flush=True)
    return {"ok": bool(rows) and all(r["ok"] for r in rows), "results": rows,
            "predictor_rules": f"TF {release or load_rules().newest_release}"}


def markdown(report: dict) -> str:
    sources = report.get("sources") or {}
    weights = report.get("weights") or {}
    lines = ["# NNAPI delegation report", "",
             f"- TensorFlow tree: {tree_line(sources.get('tensorflow') or {})}"]
    models_tree = sources.get("models") or {}
    if models_tree:
        n = len(models_tree.get("patches") or [])
        lines.append(f"- tensorflow/models tree: {models_tree.get('name')} ({models_tree.get('origin')}), "
                     f"commit {models_tree.get('commit') or 'unknown'}; {n} DeepLab patches")
    if weights:
        origin = f" (from {weights['from']})" if weights.get("from") else ""
        lines.append(f"- weights: {weights.get('weights')}: {weights.get('source')}{origin}")
    toolchain = (sources.get("tensorflow") or {}).get("toolchain") or {}
    if toolchain.get("target"):
        bazel = toolchain.get("bazel_version") or "unknown (no .bazelversion)"
        lines.append(f"- benchmark_model (toolchain stage, `artifacts` only): `{toolchain['target']}` with "
                     f"Bazel {bazel} (docs/container.md)")
    lines += ["- probe: TFLite's StatefulNnApiDelegate built from the patched tree above (`nnapi_probe`, "
              "g++, no Bazel) over a stub NNAPI device",
              "- check: `tools/check_delegation.py --delegate patched` "
              f"({report.get('predictor_rules')} rules)",
              "", "| model | API | probe | check | agree | one partition |", "|---|---|---|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['model']} | {r['android_api']} | {describe(r['probe'])} | "
                     f"{describe(r['check'])} | {'yes' if r['agree'] else 'NO'} | "
                     f"{'yes' if r['single_partition'] else 'NO'} |")
    problems = [f"{r['model']} API {r['android_api']}: {d}" for r in report["results"]
                for d in ([r["probe_error"]] if r.get("probe_error") else []) + r.get("differences", [])]
    if problems:
        lines += ["", "## Differences and errors", ""] + [f"- {p}" for p in problems]
    lines += ["", f"Result: **{'PASS' if report['ok'] else 'FAIL'}**", ""]
    return "\n".join(lines)


def _read_json(path: Optional[Path], what: str) -> Optional[dict]:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Usage(f"{what} {path}: {exc}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", required=True, type=Path, help="the nnapi_probe executable")
    ap.add_argument("--models", required=True, type=Path, help="directory with the .tflite models")
    ap.add_argument("--api-levels", nargs="+", type=int, default=[29], metavar="N")
    ap.add_argument("--sources", type=Path, help="sources.json of the sources stage (names the trees)")
    ap.add_argument("--weights", type=Path, help="the export stage's record of where the weights came from")
    ap.add_argument("--out", required=True, type=Path, help="directory for report.json and report.md")
    args = ap.parse_args(argv)
    try:
        models = sorted(args.models.glob("*.tflite"))
        if not models:
            raise Usage(f"no .tflite models in {args.models}")
        bad = [a for a in args.api_levels if not 27 <= a <= 35]
        if bad:
            raise Usage(f"API level {bad[0]} outside 27..35")
        if not args.probe.is_file():
            raise Usage(f"--probe {args.probe}: no such file")
        sources = _read_json(args.sources, "--sources") or {}
        weights = _read_json(args.weights, "--weights")
        report = verify(models, args.api_levels, args.probe, sources.get("tensorflow"))
    except (Usage, ToolError) as exc:
        print(f"verify_models: error: {exc}", file=sys.stderr)
        return 2
    report = {"ok": report["ok"], "sources": sources, "weights": weights,
              "predictor_rules": report["predictor_rules"], "results": report["results"]}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write(args.out / "report.md", markdown(report).encode())
    n_ok = sum(r["ok"] for r in report["results"])
    print(f"verify_models: {n_ok}/{len(report['results'])} model x API cases: probe and check agree on one "
          f"partition; report in {args.out}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
