#!/usr/bin/env python3
"""Benchmark (a script, not a test): fix_model on the eight Google-shaped models.

    python tests/benchmarks/bench_fix_model.py [--repeat N] [--markdown]

Per model (rebuilt from the reference models as the tests do: align_corners=True resizes, int64 ArgMax):
ops and predicted nodes before/after (stock delegate, Android API 29, TF 2.21 rules), label agreement of the
fixed model with the original on the five sample photos (TFLite's builtin kernels, no default delegate), the
fix time (median of N runs of the in-process rewrite: parse, predict, rewrite, write, check) and the CPU run
time of one invoke of each model in ai-edge-litert with its default settings (XNNPACK where it applies), as
a ratio fixed / original. The reference models are read from <repo>/../shared/reference/models or
$DEEPLAB_NNAPI_REFERENCE/models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
from deeplab_nnapi.fixer.agreement import compare  # noqa: E402
from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes  # noqa: E402
from deeplab_nnapi.images import sample_images  # noqa: E402
from deeplab_nnapi.native_logs import litert_interpreter_class  # noqa: E402
from reference_support import REFERENCE_MODELS, google_shaped  # noqa: E402

OPTIONS = FixOptions(android_api=29, tf_version="2.21", delegate="stock")


def one_run(model: bytes, x: np.ndarray) -> float:
    interpreter, _ = litert_interpreter_class()
    it = interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()  # the first invoke prepares kernels; time the second
    start = time.perf_counter()
    it.invoke()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--markdown", action="store_true", help="print the README's table")
    args = ap.parse_args()
    if not REFERENCE_MODELS:
        print("no reference models found", file=sys.stderr)
        return 2
    images = sample_images()
    rows = []
    for path in REFERENCE_MODELS:
        data = google_shaped(path.read_bytes())
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = fix_bytes(data, OPTIONS, path.name)
            times.append(time.perf_counter() - start)
        agreement = compare(data, result.data, images)
        shape = (1, 513, 513, 3) if "513" in path.name else (1, 257, 257, 3)
        x = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
        t_in, t_out = one_run(data, x), one_run(result.data, x)
        rows.append((path.name.replace("deeplabv3_mnv2_", "").replace(".tflite", ""),
                     f"{result.before.num_ops} -> {result.after.num_ops}",
                     f"{len(result.before.nodes)} -> {len(result.after.nodes)}",
                     f"{agreement.label_percent:.3f} %", f"{statistics.median(times) * 1000:.0f} ms",
                     f"{len(data) / 1e6:.1f} MB", f"{t_in * 1000:.0f} / {t_out * 1000:.0f} ms",
                     f"{t_out / t_in:.2f}"))
    head = ("model", "ops", "nodes (stock, API 29)", "label agreement", "fix time", "size",
            "CPU run orig / fixed", "ratio")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for r in (head, *rows):
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
