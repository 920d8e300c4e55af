#!/usr/bin/env python3
"""The eight DeepLab variants with random weights on TF 2.x + tf_slim: seconds per stage, total, peak memory.

Run (a patched tensorflow/models tree, see tools/apply_patches.py):

    .venv/bin/python tests/benchmarks/bench_export_tf2.py --models-dir ~/src/models [--variants all]

Per variant: the graph build in its child process (TF import, DeepLab graph, freeze, QAT ranges), the
conversion and the verification, and the exported model beside the published reference model (ops, size,
partitions). Peak memory: the largest graph-builder child and this process (converter + ai-edge-litert),
both from resource.getrusage; they run one after the other per variant, so their sum bounds the peak.
No assertions (tests/export asserts behaviour).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=os.environ.get("MODELS_SOURCE_DIR"),
                    help="patched tensorflow/models tree (default $MODELS_SOURCE_DIR)")
    ap.add_argument("--variants", default="all")
    ap.add_argument("--out", type=Path, help="keep the models here (default: a temporary directory)")
    args = ap.parse_args()
    if args.models_dir is None:
        ap.error("--models-dir (or MODELS_SOURCE_DIR) is required")

    from deeplab_nnapi.export import pipeline as ex
    from deeplab_nnapi.export.compare import compare, reference_for
    from deeplab_nnapi.export.variants import load_variants, select
    from reference_support import MODELS_DIR

    ex.check_models_dir(args.models_dir)
    ex.check_tf2_builder()
    chosen = select(load_variants(), args.variants)
    with tempfile.TemporaryDirectory(prefix="bench-export-tf2-") as tmp:
        out = args.out or Path(tmp)
        provider = ex.tf2_graph_provider(args.models_dir, None, weights="random", progress=False)
        t0 = time.monotonic()
        outcomes = ex.run(chosen, out, provider, progress=False,
                          versions=ex.tool_versions(builder=ex.TF2_BUILDER))
        total = time.monotonic() - t0
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(f"{'variant':41} {'graph':>6} {'(tf import':>10} {'build':>6} {'freeze':>6} {'qat)':>5} "
              f"{'convert':>7} {'verify':>6} {'total':>6}  ops  size     part | "
              "reference: ops  size     part")
        for o in outcomes:
            if not o.ok:
                print(f"{o.name:41} FAILED at {o.stage}: {o.error}")
                continue
            s = o.stage_seconds
            g = o.entry["source"]["graph_build"]["seconds"]
            ref = reference_for(o.name, MODELS_DIR)
            c = compare(o.path, ref) if ref else None
            theirs = (f"{c.reference.op_count:>4} {c.reference.size:>8} {c.reference.partitions:>4}"
                      + ("" if c.same else f"  DIFFERENT: {'; '.join(c.differences)}")) if c else "-"
            print(f"{o.name:41} {s['graph']:6.1f} {g['import']:10.1f} {g['build']:6.1f} {g['freeze']:6.1f} "
                  f"{g['qat']:5.1f} {s['convert']:7.1f} {s['verify'] + s.get('write', 0):6.1f} "
                  f"{o.seconds:6.1f} {c.model.op_count if c else '?':>4} {o.entry['size']:>8} "
                  f"{o.entry['delegation']['delegate_partitions']:>4} | {theirs:>20}")
        ok = sum(o.ok for o in outcomes)
        print(f"\n{ok} of {len(outcomes)} variants (build + convert + verify) in {total:.1f} s on "
              f"{os.cpu_count()} CPU(s)")
        print(f"peak RSS: largest graph-builder child {children:.0f} MiB, this process (converter, "
              f"verification) {own:.0f} MiB; at most {children + own:.0f} MiB together")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
