"""Opt-in: all eight variants from a real tensorflow/models tree, built on TF 2.x with random weights.

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
