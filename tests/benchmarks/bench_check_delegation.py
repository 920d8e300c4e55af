#!/usr/bin/env python3
"""Benchmark (a script, not a test): wall time of check_delegation on each reference model, beside
tf.lite.experimental.Analyzer on the same model.

    python tests/benchmarks/bench_check_delegation.py [--repeat N] [MODEL ...]

Columns: the check in-process (median of N runs: parse + rules + partition), the whole command line in
a fresh interpreter (python startup + imports + check; median of 3), and the Analyzer's analyze() call
(median of N; TensorFlow imported beforehand, its import time printed once). Ratio = check / Analyzer
(in-process, warm). A last line compares cold command lines: this tool vs. a fresh python that imports
TensorFlow and runs the Analyzer on the first model.
The reference models are read from <repo>/../shared/reference/models or $DEEPLAB_NNAPI_REFERENCE/models.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model  # noqa: E402


def reference_models() -> list:
    ref = os.environ.get("DEEPLAB_NNAPI_REFERENCE")
    base = Path(ref) if ref else REPO / ".." / "shared" / "reference"
    return sorted((base / "models").resolve().glob("*.tflite"))


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cli_time(model: Path) -> float:
    cmd = [sys.executable, str(REPO / "tools" / "check_delegation.py"), str(model), "--delegate", "stock"]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    models = args.models or reference_models()
    if not models:
        print("no models (reference directory not found)", file=sys.stderr)
        return 2

    analyzer = None
    try:
        t0 = time.perf_counter()
        import tensorflow as tf  # noqa: PLC0415

        analyzer = tf.lite.experimental.Analyzer
        print(f"tensorflow {tf.__version__} imported in {time.perf_counter() - t0:.1f} s (not counted below)")
    except ImportError:
        print("tensorflow not installed: Analyzer column skipped")

    opts = DelegateOptions(android_api=29, delegate="stock")
    header = f"{'model':<52} {'MB':>5} {'check ms':>9} {'CLI ms':>8} {'Analyzer ms':>12} {'check/An.':>10}"
    print(header)
    print("-" * len(header))
    for model in models:
        size = model.stat().st_size / 1e6
        check_model(model, opts)  # warm caches (rule table parse) like a CLI run does once
        t_check = median_time(lambda m=model: check_model(m, opts), args.repeat)
        t_cli = cli_time(model)
        if analyzer is not None:

            def analyze(m=model):
                with contextlib.redirect_stdout(io.StringIO()):
                    analyzer.analyze(model_path=str(m))

            t_an = median_time(analyze, args.repeat)
            an_text = f"{t_an * 1e3:12.1f}"
            ratio = f"{t_check / t_an:9.1f}x"
        else:
            an_text, ratio = f"{'n/a':>12}", f"{'n/a':>10}"
        print(f"{model.name:<52} {size:5.2f} {t_check * 1e3:9.1f} {t_cli * 1e3:8.0f} {an_text} {ratio}")
    print(
        "check ms: in-process median; CLI ms: fresh interpreter, whole command; check/An. = check / Analyzer"
    )
    if analyzer is not None:
        code = (
            "import contextlib, io, sys, tensorflow as tf\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    tf.lite.experimental.Analyzer.analyze(model_path=sys.argv[1])\n"
        )
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, str(models[0])], check=True, capture_output=True)
        t_cold = time.perf_counter() - t0
        print(
            f"cold command lines on {models[0].name}: check_delegation {cli_time(models[0]):.2f} s, "
            f"python + TensorFlow + Analyzer {t_cold:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
