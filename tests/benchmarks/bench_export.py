#!/usr/bin/env python3
"""Per test graph: conversion time and partition count (patched and stock delegate, API 29).

Run: PYTHONPATH=tools python tests/benchmarks/bench_export.py [--sizes 129,257,513] [--repeat 3]
Prints a table; no assertions (the tests in tests/export assert behaviour).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "export"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="129,257", help="input sizes (output stride 8), comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    from deeplab_nnapi.export.convert import convert_frozen_graph
    from deeplab_nnapi.export.variants import ConverterSettings
    from deeplab_nnapi.export.verify import verify_model
    from export_graphs import GraphSpec, build_frozen_graph

    settings = ConverterSettings()
    with tempfile.TemporaryDirectory() as cal:
        rng = np.random.default_rng(0)
        for i in range(4):
            np.save(Path(cal) / f"{i}.npy", rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            for shape in ("patched", "upstream"):
                for mode in ("dummy", "qat", "calibrated"):
                    if shape == "upstream" and mode == "calibrated":
                        continue
                    spec = GraphSpec(size=size, num_classes=5, upstream=shape == "upstream",
                                     qat=mode == "qat")
                    pb = build_frozen_graph(spec)
                    times = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        images = Path(cal) if mode == "calibrated" else None
                        r = convert_frozen_graph(pb, settings, (size, size), mode, calibration_images=images)
                        times.append(time.perf_counter() - t0)
                    vp = verify_model(r.model, 5, (size, size), delegate="patched")
                    vs = verify_model(r.model, 5, (size, size), delegate="stock")
                    rows.append((f"{shape} {size}x{size} pool {spec.pool}x{spec.pool}", mode,
                                 statistics.median(times), len(r.model), vp.delegate_partitions,
                                 vp.plan_nodes, vs.delegate_partitions, vs.plan_nodes,
                                 "ok" if vp.ok else "rejected"))
    print(f"{'graph':34} {'mode':10} {'convert s':>9} {'bytes':>7} {'patched part/nodes':>18} "
          f"{'stock part/nodes':>16}  verify")
    for g, m, t, b, pp, pn, sp, sn, ok in rows:
        print(f"{g:34} {m:10} {t:9.3f} {b:7d} {f'{pp}/{pn}':>18} {f'{sp}/{sn}':>16}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
