"""Atomic writes and the manifest's bookkeeping (no TensorFlow needed)."""

from __future__ import annotations

import json
import os

import pytest
from deeplab_nnapi.export import pipeline as ex


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        ex.atomic_write(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


def test_manifest_drops_entries_whose_file_is_gone_or_changed(tmp_path):
    (tmp_path / "a.tflite").write_bytes(b"aaaa")
    (tmp_path / "b.tflite").write_bytes(b"bb")
    m = {"schema": 1, "models": {
        "a": {"file": "a.tflite", "size": 4},
        "b": {"file": "b.tflite", "size": 3},  # size no longer matches
        "c": {"file": "c.tflite", "size": 1},  # file gone
    }}
    ex.write_manifest(tmp_path, m)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert list(data["models"]) == ["a"] and data["schema"] == 1 and data["updated"]
    assert ex.load_manifest(tmp_path)["models"] == {"a": {"file": "a.tflite", "size": 4}}


def test_unreadable_manifest_starts_afresh(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    assert ex.load_manifest(tmp_path) == {"schema": 1, "models": {}}
