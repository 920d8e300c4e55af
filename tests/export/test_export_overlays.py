"""export_models --overlays: partition diagram, overlays and report next to the exported models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from deeplab_nnapi.cli.export_models import main

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

SIZE, CLASSES = 129, 5


def test_overlays_flag_writes_pictures_beside_the_models(graphs, tmp_path, capsys):
    from deeplab_nnapi.pictures import node_groups
    from PIL import Image as PILImage

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    PILImage.fromarray(rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)).save(photos / "noise.png")
    out = tmp_path / "out"
    rc = main(["--from-graph", str(graphs[("patched", "qat")]), "--out", str(out),
               "--num-classes", str(CLASSES), "--input-size", str(SIZE), "--name", "m", "--quiet", "--json",
               "--overlays", "--images", str(photos)])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    pics = out / "pictures"
    assert sorted(p.name for p in out.iterdir()) == ["m.tflite", "manifest.json", "pictures"]
    assert sorted(str(p.relative_to(pics)) for p in pics.rglob("*") if p.is_file()) == [
        "m.partitions.svg", str(Path("m") / "noise.png"), "report.html"]
    with PILImage.open(pics / "m" / "noise.png") as im:
        assert im.size == (140, 90)
    groups = node_groups((pics / "m.partitions.svg").read_bytes())
    assert len(groups[0]) > 1 and len(groups[1]) == 1  # stock delegate: split; ours: one partition
    assert result["pictures"]["report"] == str(pics / "report.html")
    assert result["pictures"]["overlays"][0]["dataset"] == "generic"  # 5 classes: no known dataset
