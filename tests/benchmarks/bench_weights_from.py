#!/usr/bin/env python3
"""--weights-from against the real DeepLab code: the fidelity table of the eight published models, the
new-size exports, and what dummy quantization costs.

Run (a patched tensorflow/models tree, see tools/apply_patches.py; the published models in
../shared/reference/models):

    .venv/bin/python tests/benchmarks/bench_weights_from.py --models-dir ~/src/models [--new-sizes]
        [--converter-dummy] [--json RESULTS.json]

1. Fidelity: each published model exported with ``--weights-from`` itself, at its own size and stride (the
   pascal models with their QAT ranges; the dummy-quantized ones with ``--quantization dummy``, the
   published form, and with ``--quantization qat``, their own ranges), then compared tensor by tensor with
   it (export/compare.py) and on the sample photos (labels equal, and against the float graph of the same
   weights in TensorFlow). Seconds per model: the whole export_models run (child process with TF import,
   graph, conversion, verification, label runs).
2. ``--new-sizes``: pascal at 321 and 769 (output stride 8 and 16) and cityscapes at 769 and 1025x2049
   (stride 16) from the published weights: partitions, rewrites, agreement with the float graph.
3. ``--converter-dummy``: what the converter's own dummy quantization (``default_ranges_stats``, TF 2.x of
   today) gives for the cityscapes 513 os16 model: the weights get their own range, not (0, 6) as in the
   published files.

No assertions (tests/export asserts behaviour). Each export runs in its own process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

NEW_SIZES = [  # (label, source model, crop, stride)
    ("pascal 321 os8", "deeplabv3_mnv2_pascal_513_os16_quant", "321", 8),
    ("pascal 321 os16", "deeplabv3_mnv2_pascal_513_os16_quant", "321", 16),
    ("pascal 769 os8", "deeplabv3_mnv2_pascal_513_os16_quant", "769", 8),
    ("pascal 769 os16", "deeplabv3_mnv2_pascal_513_os16_quant", "769", 16),
    ("cityscapes 769 os16", "deeplabv3_mnv2_cityscapes_513_os16_dummy_quant", "769", 16),
    ("cityscapes 1025x2049 os16", "deeplabv3_mnv2_cityscapes_513_os16_dummy_quant", "1025x2049", 16),
]


def export(models_dir: Path, out: Path, *argv: str) -> dict:
    cmd = [sys.executable, str(ROOT / "tools" / "export_models.py"), "--models-dir", str(models_dir),
           "--out", str(out), "--json", "--quiet", *argv]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.monotonic() - t0
    try:
        (v,) = json.loads(r.stdout)["variants"]
    except (ValueError, KeyError):
        return {"ok": False, "error": r.stderr.strip().splitlines()[-1:] or ["no output"], "wall": took}
    v["wall"] = took
    return v


def fidelity_row(label: str, v: dict) -> str:
    if not v.get("ok"):
        return f"{label:56} FAILED: {v.get('error')}"
    f, a = v.get("fidelity", {}), v.get("agreement", {})
    k = f.get("by_kind", {})

    def diff(kind: str) -> str:
        s = k.get(kind, {})
        return f"{s.get('differing_values', '?')}/{s.get('values', '?')}"

    qdiff = sum(s.get("quantization_differs", 0) for s in k.values())
    return (f"{label:56} {'yes' if f.get('same_op_sequence') else 'no':>4} "
            f"{'yes' if qdiff == 0 else f'no ({qdiff})':>7} {diff('weights'):>17} {diff('bias'):>11} "
            f"{'yes' if f.get('identical') else 'no':>9} "
            f"{a.get('source_model', {}).get('agreement_percent', '-'):>8} "
            f"{a.get('float_graph', {}).get('agreement_percent', '-'):>8} {v['wall']:7.1f}")


def converter_dummy(models_dir: Path, reference: Path) -> dict:
    """The float graph of the cityscapes weights, converted with the converter's default_ranges_stats."""
    from deeplab_nnapi.export import tflite_weights as tw
    from deeplab_nnapi.export.compare import tensor_fidelity
    from deeplab_nnapi.export.convert import convert_frozen_graph
    from deeplab_nnapi.export.deeplab_graph import build_frozen_graph
    from deeplab_nnapi.export.variants import load_variants

    variant = load_variants()["deeplabv3_mnv2_cityscapes_513_os16_quant"].with_quantization("calibrated")
    with tempfile.TemporaryDirectory(prefix="bench-weights-from-") as tmp:
        pkg = Path(tmp) / "w.npz"
        tw.write_package(tw.read_source(reference), pkg)
        pb, _ = build_frozen_graph(models_dir, variant, Path(tmp), weights="tflite", weights_package=pkg)
        model = convert_frozen_graph(pb.read_bytes(), variant.converter, variant.crop, "dummy").model
    f = tensor_fidelity(model, reference, model_label="converter default_ranges_stats")
    return f.to_json(per_tensor=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=os.environ.get("MODELS_SOURCE_DIR"),
                    help="patched tensorflow/models tree (default $MODELS_SOURCE_DIR)")
    ap.add_argument("--models", default="all", help="published model stems, comma-separated (default all)")
    ap.add_argument("--new-sizes", action="store_true", help="also the new-size exports")
    ap.add_argument("--converter-dummy", action="store_true",
                    help="also the converter's own dummy quantization beside the published form")
    ap.add_argument("--out", type=Path, help="keep the models here (default: a temporary directory)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every result here")
    args = ap.parse_args()
    if args.models_dir is None:
        ap.error("--models-dir (or MODELS_SOURCE_DIR) is required")
    from reference_support import MODELS_DIR, REFERENCE_MODELS

    chosen = [p for p in REFERENCE_MODELS if args.models == "all" or p.stem in args.models.split(",")]
    results: dict = {"fidelity": {}, "new_sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-weights-from-") as tmp:
        out = args.out or Path(tmp)
        print(f"{'model (export mode)':56} {'seq':>4} {'quant=':>7} {'weights diff/all':>17} "
              f"{'bias diff':>11} {'identical':>9} {'labels%':>8} {'float%':>8} {'s':>7}")
        for ref in chosen:
            modes = [("qat", [])] if "_dummy_" not in ref.name else [("dummy", ["--quantization", "dummy"]),
                                                                      ("qat", ["--quantization", "qat"])]
            for mode, extra in modes:
                v = export(args.models_dir, out / f"{ref.stem}-{mode}", "--weights-from", str(ref),
                           "--agreement", *extra)
                results["fidelity"][f"{ref.stem} ({mode})"] = v
                print(fidelity_row(f"{ref.stem} ({mode})", v), flush=True)
        if args.new_sizes:
            print(f"\n{'new size':28} {'partitions':>10} {'quantization':>12} {'rewrites':>9} {'float%':>8} "
                  f"{'s':>7}")
            for label, stem, crop, stride in NEW_SIZES:
                source = MODELS_DIR / f"{stem}.tflite"
                v = export(args.models_dir, out / "new", "--weights-from", str(source), "--crop-size", crop,
                           "--output-stride", str(stride), "--agreement")
                results["new_sizes"][label] = v
                if not v.get("ok"):
                    print(f"{label:28} FAILED: {v.get('error')}", flush=True)
                    continue
                rw = ", ".join(f"{r['op_type']}->{r['replacement'].split()[0]}"
                               for r in v.get("rewrites", []))
                print(f"{label:28} {v['delegation']['delegate_partitions']:>10} "
                      f"{v['quantization']['mode']:>12} {rw or '-':>9} "
                      f"{v['agreement']['float_graph']['agreement_percent']:>8} {v['wall']:7.1f}", flush=True)
        if args.converter_dummy:
            ref = MODELS_DIR / "deeplabv3_mnv2_cityscapes_513_os16_dummy_quant.tflite"
            f = converter_dummy(args.models_dir, ref)
            results["converter_dummy"] = f
            print("\nconverter's own dummy quantization (default_ranges_stats) vs the published cityscapes "
                  "513 os16:")
            for kind, s in f["by_kind"].items():
                print(f"  {kind:10} tensors {s['tensors']:3}  quantization differs "
                      f"{s['quantization_differs']:3}  values differing "
                      f"{s['differing_values']}/{s['values']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
