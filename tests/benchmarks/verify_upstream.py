#!/usr/bin/env python3
"""The patch set on real upstream DeepLab text, as a table: for every tensorflow/models commit since the
2019-05 quantization release that changed DeepLab's export path (and for fork tips given), the patches
chosen, apply / second run / reverse, and the graph check: the inference graph the TF 2.x builder makes
from the patched tree (random weights, crop 129, output stride 16; both prediction branches) has no resize
with align_corners=True and an int32 ArgMax. The unpatched tree is built too, to show what changed.

    python tests/benchmarks/verify_upstream.py --models-git ~/src/models [--fork ~/src/fork ...] [--no-graphs]

Needs the export extra for the graph check. Prints a Markdown table; exit 1 if any row fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "apply"))

from realsource_trees import (  # noqa: E402
    FINAL_UPSTREAM,
    MODELS_FILES,
    QUANTIZATION_RELEASE,
    commits_touching,
    git_dir,
    snapshot,
    unpack,
)

APPLY = ROOT / "tools" / "apply_patches.py"
BUILD_FILES = ("research/deeplab", "research/slim")


def run_apply(tree: Path, *extra) -> dict:
    r = subprocess.run([sys.executable, str(APPLY), "--models-dir", str(tree), "--json", *extra],
                       capture_output=True, text=True)
    if not r.stdout:
        return {"ok": False, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "no output"}
    rep = json.loads(r.stdout)
    rep["rc"] = r.returncode
    return rep


def graph_facts(pb: Path) -> dict:
    from deeplab_nnapi.native_logs import import_tensorflow

    tf = import_tensorflow()
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(pb.read_bytes())
    resizes = [(n.op, n.attr["align_corners"].b) for n in gd.node
               if n.op in ("ResizeBilinear", "ResizeNearestNeighbor")]
    argmax = [tf.dtypes.as_dtype(n.attr["output_type"].type).name for n in gd.node if n.op == "ArgMax"]
    return {"resizes": len(resizes), "align_corners_true": sum(1 for _, a in resizes if a),
            "nearest": sum(1 for op, _ in resizes if op == "ResizeNearestNeighbor"), "argmax": argmax}


def build(tree: Path, work: Path, upsampled: bool) -> dict:
    from deeplab_nnapi.export.deeplab_graph import GraphBuildError, build_frozen_graph
    from deeplab_nnapi.export.variants import load_variants

    base = load_variants()["deeplabv3_mnv2_pascal_257_os16_quant"]
    flags = [f for f in base.export_flags if not f.startswith("--crop_size")]
    flags += ["--crop_size=129", "--crop_size=129"]
    converter = base.converter
    if not upsampled:  # argmax, then a nearest-neighbour resize of the labels, then a squeeze
        flags.append("--noprediction_with_upsampled_logits")
        converter = dataclasses.replace(converter, output_array="Squeeze_1")
    variant = dataclasses.replace(base, name=f"check_{'up' if upsampled else 'nn'}", crop_size=129,
                                  export_flags=tuple(flags), quantization="dummy", converter=converter)
    work.mkdir(parents=True, exist_ok=True)
    try:
        pb, _ = build_frozen_graph(tree, variant, work, weights="random")
    except GraphBuildError as exc:
        return {"error": str(exc)}
    return graph_facts(pb)


def graph_cell(before: dict, after: dict) -> str:
    if "error" in after:
        return f"not built: {after['error'][:80]}"
    ok = after["align_corners_true"] == 0 and after["argmax"] and set(after["argmax"]) == {"int32"}
    was = "" if "error" in before else (f" (unpatched: {before['align_corners_true']} align_corners=True, "
                                        f"ArgMax {','.join(before['argmax'])})")
    return ("ok" if ok else "FAIL") + f": {after['resizes']} resizes all align_corners=False, ArgMax " \
        f"{','.join(after['argmax'])}{was}"


def _how(p: dict) -> str:
    """The patch used (its pre-image blob) for a clean apply, else the strategy."""
    return p["name"].rsplit("-", 1)[-1] if p["strategy"] == "clean" else p["strategy"]


def verify(gd: Path, commit: str, label: str, date: str, work: Path, graphs: bool) -> dict:
    tree = unpack(gd, commit, MODELS_FILES + BUILD_FILES if graphs else MODELS_FILES, work / "tree")
    pristine = snapshot(tree)
    row = {"label": label, "date": date}
    before = {}
    if graphs:
        before = {k: build(tree, work / f"before-{k}", k == "up") for k in ("up", "nn")}
    first = run_apply(tree)
    patches = first.get("trees", [{}])[0].get("patches", [])
    row["patches"] = ", ".join(f"{Path(p['path'] or p['file']).name}: {_how(p)}" for p in patches) \
        or first.get("error", "?")
    row["apply"] = "ok" if first.get("rc") == 0 else "FAIL"
    second = run_apply(tree)
    states = {p["state"] for p in second.get("trees", [{}])[0].get("patches", [])}
    row["second"] = "already-applied" if second.get("rc") == 0 and states <= {
        "already-applied", "not-needed", "not-present"} else f"FAIL {sorted(states)}"
    if graphs:
        after = {k: build(tree, work / f"after-{k}", k == "up") for k in ("up", "nn")}
        row["graph"] = "; ".join(f"{'upsampled logits' if k == 'up' else 'nearest-neighbour labels'}: "
                                 f"{graph_cell(before[k], after[k])}" for k in ("up", "nn"))
    rev = run_apply(tree, "--reverse")
    row["reverse"] = "bytes restored" if rev.get("rc") == 0 and snapshot(tree) == pristine else "FAIL"
    row["ok"] = all(row[k] not in ("FAIL",) and not str(row[k]).startswith("FAIL")
                    for k in ("apply", "second", "reverse")) and "FAIL" not in row.get("graph", "")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-git", type=Path, required=True, help="tensorflow/models clone with history")
    ap.add_argument("--fork", type=Path, action="append", default=[],
                    help="a fork clone: its HEAD is checked (repeatable)")
    ap.add_argument("--no-graphs", action="store_true", help="skip the graph check (no TensorFlow needed)")
    args = ap.parse_args()
    rows = []
    gd = git_dir(args.models_git)
    targets = [(sha, f"tensorflow/models@{sha[:8]}", date) for sha, date, _ in
               commits_touching(gd, FINAL_UPSTREAM, MODELS_FILES, since=QUANTIZATION_RELEASE)]
    targets += [(None, str(f), "HEAD") for f in args.fork]
    for sha, label, date in targets:
        with tempfile.TemporaryDirectory(prefix="verify-upstream-") as tmp:
            src = gd if sha else git_dir(Path(label))
            rows.append(verify(src, sha or "HEAD", label, date, Path(tmp), not args.no_graphs))
        print(f"{label}: {'ok' if rows[-1]['ok'] else 'FAILED'}", file=sys.stderr, flush=True)
    cols = ["label", "date", "patches", "apply", "second", "reverse"] + ([] if args.no_graphs else ["graph"])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
