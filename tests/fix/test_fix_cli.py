"""fix_model's command line: bad input is one line and exit 2, OUT is atomic, IN is never changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from deeplab_nnapi.cli.fix_model import main
from deeplab_nnapi.fileio import sha256_file
from deeplab_nnapi.fixer.model_io import read_model, write_model
from deeplab_nnapi.nnapi.delegation import check_model
from fix_support import one_op_model, resize_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one_line_error(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fix_model: error: ")
    return err[0]


def test_fix_writes_one_partition_and_keeps_in(google_file, tmp_path, capsys):
    out = tmp_path / "fixed.tflite"
    before = sha256_file(google_file)
    assert main([str(google_file), str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sha256_file(google_file) == before
    assert out.is_file() and report["written"] and report["sha256_out"] == sha256_file(out)
    assert report["before"]["nodes"] == 8 and report["after"]["nodes"] == 1
    assert report["after"]["single_partition"]
    assert [r["op_type"] for r in report["rewrites"]] == ["AVERAGE_POOL_2D", "RESIZE_BILINEAR",
                                                          "RESIZE_BILINEAR", "RESIZE_BILINEAR", "ARG_MAX"]
    assert report["dtype_changes"] == ["output 'ArgMax': INT64 -> INT32"]
    assert report["agreement"]["label_agreement_percent"] >= 99.9
    assert report["agreement"]["images"] == ["astronaut", "chelsea", "motorcycle", "coffee", "rocket"]
    assert check_model(out.read_bytes()).single_partition
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.tflite", "google.tflite"]


def test_text_report(google_file, tmp_path, capsys):
    assert main([str(google_file), str(tmp_path / "o.tflite"), "--no-agreement"]) == 0
    text = capsys.readouterr().out
    assert "rewrite op 69 RESIZE_BILINEAR -> ops 69-70" in text and "then SLICE to 257x257" in text
    assert "refused because: NNAPI only supports int32 output." in text
    assert "result: 8 -> 1 nodes, ONE NNAPI partition" in text


def test_images_dir(google_file, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    np.save(imgs / "noise.npy", np.random.default_rng(0).integers(0, 256, (40, 60, 3)).astype(np.uint8))
    argv = [str(google_file), str(tmp_path / "o.tflite"), "--images", str(imgs), "--json",
            "--min-agreement", "0"]  # a noise image: MEAN's rounding flips labels more often than on photos
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["agreement"]["images"] == ["noise"]


def test_not_a_tflite_file(tmp_path, capsys):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"hello, this is not a flatbuffer at all" * 4)
    line = _one_line_error(capsys, [str(bad), str(tmp_path / "o.tflite")])
    assert "not a valid TensorFlow Lite model" in line
    assert not (tmp_path / "o.tflite").exists()


def test_truncated_file(google_file, tmp_path, capsys):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(google_file.read_bytes()[: 100_000])
    line = _one_line_error(capsys, [str(cut), str(tmp_path / "o.tflite")])
    assert "not a valid TensorFlow Lite model" in line


def test_missing_input_and_same_path(tmp_path, google_file, capsys):
    line = _one_line_error(capsys, [str(tmp_path / "nope.tflite"), str(tmp_path / "o.tflite")])
    assert "no such file" in line
    assert "OUT is IN" in _one_line_error(capsys, [str(google_file), str(google_file)])


def test_unsupported_op_version(google_file, tmp_path, capsys):
    model = read_model(google_file.read_bytes())
    for oc in model.operatorCodes:
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == 56:  # ARG_MAX
            oc.version = 9
    odd = tmp_path / "v9.tflite"
    odd.write_bytes(write_model(model))
    line = _one_line_error(capsys, [str(odd), str(tmp_path / "o.tflite")])
    assert "ARG_MAX has version 9; the fixer knows versions 1..3" in line
    assert not (tmp_path / "o.tflite").exists()


def test_resize_without_whole_target(tmp_path, capsys):
    src = tmp_path / "r.tflite"
    src.write_bytes(resize_model(10, 65))
    out = tmp_path / "o.tflite"
    line = _one_line_error(capsys, [str(src), str(out), "--no-agreement"])
    assert "not whole" in line and "--approximate" in line and not out.exists()
    assert main([str(src), str(out), "--no-agreement", "--approximate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rewrites"][0]["exactness"] == "approximate" and not report["exact"]


def test_out_is_atomic_on_failure(google_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.tflite"
    before = sha256_file(google_file)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    line = _one_line_error(capsys, [str(google_file), str(out), "--no-agreement"])
    assert "cannot write (No space left on device)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["google.tflite"]  # no OUT, no temp file
    assert sha256_file(google_file) == before


def test_old_out_survives_a_failed_check(tmp_path, capsys):
    src = tmp_path / "p.tflite"
    src.write_bytes(one_op_model("FLOOR_DIV", 1, [dict(name="a", type="INT32", shape=[4]),
                                                  dict(name="b", type="INT32", shape=[4])],
                                 [dict(name="c", type="INT32", shape=[4])]))  # no rule: stays refused
    out = tmp_path / "o.tflite"
    out.write_bytes(b"old")
    assert main([str(src), str(out), "--no-agreement", "--expect-single-partition"]) == 1
    captured = capsys.readouterr()
    assert "not written" in captured.out and captured.err.startswith("fix_model: error: OUT is")
    assert out.read_bytes() == b"old"


def test_shim_help():
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "fix_model.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "align_corners=False n->m' = n(m-1)/(n-1)" in proc.stdout and "exit status" in proc.stdout


@pytest.mark.parametrize("argv", [["--android-api", "99"], ["--min-agreement", "101"]])
def test_bad_options(google_file, tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main([str(google_file), str(tmp_path / "o.tflite"), *argv])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
