#!/usr/bin/env python3
"""Build time of the real-delegate probe (cold, patched after stock, cached) and the time per model of the
probe beside the predictor's.

    python tests/benchmarks/bench_probe.py --source-dir ~/src/LiteRT [--jobs 2]

Cold: an empty build cache. Patched after stock: the patched delegate reuses every object but the delegate's.
Cached: a second build of the same source state. Per model: the published models at API 29 and 30, in one
probe process, against plan_model in this process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1] / "tools")]

from deeplab_nnapi.nnapi.delegation import DelegateOptions, plan_model  # noqa: E402
from deeplab_nnapi.nnapi.tflite_model import load_model  # noqa: E402
from deeplab_nnapi.probe.engine import RealDelegate  # noqa: E402
from reference_support import REFERENCE_MODELS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source-dir", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as cache:
        cache = Path(cache)
        rows = []
        for label, delegate in (("cold (empty cache), stock", "stock"), ("patched after stock", "patched"),
                                ("cached, stock", "stock"), ("cached, patched", "patched")):
            t = time.perf_counter()
            built = RealDelegate(args.source_dir, delegate, cache_dir=cache, jobs=args.jobs).build()
            rows.append((label, time.perf_counter() - t, built.compiled, built.sources))
        print(f"probe build from {args.source_dir} on {args.jobs} job(s):")
        print("| build | seconds | compiled | translation units |\n|---|---|---|---|")
        for label, sec, compiled, units in rows:
            print(f"| {label} | {sec:.1f} | {compiled} | {units} |")
        models = [load_model(p) for p in REFERENCE_MODELS]
        options = [DelegateOptions(android_api=a, delegate="patched") for a in (29, 30)]
        real = RealDelegate(args.source_dir, "patched", cache_dir=cache)
        real.build()
        t = time.perf_counter()
        real.plans(models, options)
        probe_s = (time.perf_counter() - t) / (len(models) * len(options))
        t = time.perf_counter()
        for m in models:
            for o in options:
                plan_model(m, o)
        pred_s = (time.perf_counter() - t) / (len(models) * len(options))
        print(f"\nper model and API level ({len(models)} published models x {len(options)} levels): "
              f"probe {1000 * probe_s:.1f} ms (one process, model files written and read), "
              f"predictor {1000 * pred_s:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
