"""Opt-in: all eight variants from a real tensorflow/models tree, built on TF 2.x with random weights, and
all eight published models rebuilt from their own weights (--weights-from).

    MODELS_SOURCE_DIR=~/src/models python -m pytest -m realsource tests/export -q -s

The test copies the tree's research/deeplab and research/slim into a temporary directory, patches the copy
with tools/apply_patches.py (whatever patch set this checkout holds), runs

    tools/export_models.py --models-dir COPY --variants all --weights random --out OUT --json

and requires eight models, one NNAPI partition each, and the reference models' op count, op types, input
quantization and output. With -s it prints the comparison per variant.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.realsource, pytest.mark.tensorflow]

REPO = Path(__file__).resolve().parents[2]

from reference_support import MODELS_DIR  # noqa: E402


@pytest.fixture(scope="module")
def patched_copy(tmp_path_factory) -> Path:
    src = os.environ.get("MODELS_SOURCE_DIR")
    if not src:
        pytest.skip("set MODELS_SOURCE_DIR to a tensorflow/models checkout")
    src_dir = Path(src).expanduser()
    dest = tmp_path_factory.mktemp("models")
    for sub in ("research/deeplab", "research/slim"):
        shutil.copytree(src_dir / sub, dest / sub, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    r = subprocess.run([sys.executable, str(REPO / "tools" / "apply_patches.py"), "--models-dir", str(dest)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return dest


def test_all_eight_variants_random_weights_one_partition_each(patched_copy, tmp_path):
    from deeplab_nnapi.export.compare import compare, reference_for

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "tools" / "export_models.py"), "--models-dir",
                        str(patched_copy), "--variants", "all", "--weights", "random", "--out", str(out),
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert len(res["variants"]) == 8 and all(v["ok"] for v in res["variants"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["models"]) == 8
    print(f"\n8 variants in {res['seconds']:.1f} s")
    for v in res["variants"]:
        assert v["delegation"]["delegate_partitions"] == 1
        ref = reference_for(v["name"], MODELS_DIR)
        assert ref is not None, v["name"]
        c = compare(out / f"{v['name']}.tflite", ref)
        print(f"{v['name']}: {c.model.op_count} ops, {c.model.size} bytes, {c.model.partitions} partition "
              f"(reference {ref.name}: {c.reference.op_count} ops, {c.reference.size} bytes, "
              f"{c.reference.partitions} partition); {v['seconds']:.1f} s"
              + (f"; {'; '.join(c.notes)}" if c.notes else ""))
        assert c.same, f"{v['name']}: {c.differences}"


def test_weights_from_gives_back_all_eight_published_models(patched_copy, tmp_path):
    """Each published model exported with --weights-from itself, at its own size and stride, through the
    real DeepLab code: the same ops in the same order, every tensor's scale and zero point, every weight
    and bias value, and the same labels on the sample photos. The pascal models with their QAT ranges,
    the dummy-quantized ones with --quantization dummy (the published form). With -s it prints the table
    (tests/benchmarks/bench_weights_from.py prints more)."""
    from reference_support import REFERENCE_MODELS

    print(f"\n{'model':48} {'identical':>9} {'weights diff':>12} {'bias diff':>9} {'labels %':>8} "
          f"{'float %':>8} {'s':>6}")
    for ref in REFERENCE_MODELS:
        out = tmp_path / ref.stem
        extra = ["--quantization", "dummy"] if "_dummy_" in ref.name else []
        r = subprocess.run([sys.executable, str(REPO / "tools" / "export_models.py"), "--models-dir",
                            str(patched_copy), "--weights-from", str(ref), "--agreement", "--out", str(out),
                            "--json", "--quiet", *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        (v,) = json.loads(r.stdout)["variants"]
        f, a = v["fidelity"], v["agreement"]
        k = f["by_kind"]
        print(f"{ref.stem:48} {str(f['identical']):>9} {k['weights']['differing_values']:>12} "
              f"{k['bias']['differing_values']:>9} {a['source_model']['agreement_percent']:>8} "
              f"{a['float_graph']['agreement_percent']:>8} {v['seconds']:6.1f}")
        assert v["delegation"]["delegate_partitions"] == 1
        assert f["identical"], f
        assert a["source_model"]["agreement_percent"] == 100.0
