"""The command lines: check_delegation --diagram, draw_pictures, export_models --overlays; their error paths
(one line, exit 2, nothing written) and atomic output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from deeplab_nnapi.cli.check_delegation import main as check_main  # noqa: E402
from deeplab_nnapi.pictures import node_groups  # noqa: E402
from reference_support import REPO_ROOT  # noqa: E402


def _one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:"), err
    assert "Traceback" not in err
    return lines[0]


def _files(directory: Path):
    return sorted(p.name for p in directory.iterdir())


# ----------------------------------------------------------------------------------------------------
# check_delegation --diagram


def test_diagram_of_the_google_shaped_model_with_profile(google_model, seed_profile, tmp_path, capsys):
    out = tmp_path / "google.svg"
    rc = check_main([str(google_model), "--delegate", "stock", "--profile", str(seed_profile),
                     "--diagram", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "result: 8 nodes (3 delegate, 5 CPU)" in captured.out  # the text report is unchanged
    assert f"diagram of 1 plan(s) written to {out}" in captured.err
    groups = node_groups(out.read_bytes())[0]
    assert [i for i, _ in groups] == [71, 61, 72, 63, 73, 68, 69, 70]
    assert b"11.422 ms" in out.read_bytes()
    assert _files(tmp_path) == ["google.svg"]  # no temporary file left behind


def test_delegate_and_api_lists_make_one_sheet(google_model, pascal_513_os8, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    rc = check_main([str(google_model), str(pascal_513_os8), "--delegate", "stock,patched",
                     "--android-api", "29,30", "--diagram", str(out), "--json", "--quiet"])
    assert rc == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    result = json.loads(captured.out)
    plans = result["models"]
    assert len(plans) == 8  # 2 models x 2 delegates x 2 API levels, model by model
    assert [(p["options"]["delegate"], p["options"]["android_api"]) for p in plans[:4]] == [
        ("stock", 29), ("stock", 30), ("patched", 29), ("patched", 30)]
    # Google's model: at API 30 the resizes join the delegate; patched, the pool does; ARG_MAX int64 never
    assert [len(p["nodes"]) for p in plans] == [8, 4, 6, 2, 3, 3, 1, 1]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "sheet.svg"
    rc = check_main([str(google_model), "--delegate", "stock,patched", "--diagram", str(svg), "--quiet"])
    assert rc == 0
    assert list(node_groups(svg.read_bytes())) == [0, 1]


@pytest.mark.parametrize("target, words", [
    ("diagram.jpg", "unknown picture type .jpg; use .svg or .png"),
    ("diagram", "unknown picture type (no extension)"),
    ("blocker/diagram.svg", "not a directory"),
    ("adir.svg", "is a directory"),
])
def test_diagram_target_errors_are_one_line_and_write_nothing(target, words, pascal_513_os8, tmp_path,
                                                              capsys):
    (tmp_path / "blocker").write_text("a file, not a directory")
    (tmp_path / "adir.svg").mkdir()
    before = _files(tmp_path)
    assert check_main([str(pascal_513_os8), "--diagram", str(tmp_path / target)]) == 2
    assert words in _one_line_error(capsys, "check_delegation")
    assert _files(tmp_path) == before


def test_diagram_needs_models_and_refuses_repeated_values(seed_profile, pascal_513_os8, tmp_path, capsys):
    assert check_main(["--profile", str(seed_profile), "--diagram", str(tmp_path / "d.svg")]) == 2
    assert "--diagram needs MODEL.tflite" in _one_line_error(capsys, "check_delegation")
    for args, words in ((["--delegate", "stock,stock"], "a value is repeated in stock,stock"),
                        (["--delegate", "stock,other"], "invalid choice: 'other'"),
                        (["--android-api", "29,26"], "26 is outside")):
        with pytest.raises(SystemExit) as info:  # argparse's own exit: one line, status 2
            check_main([str(pascal_513_os8), *args])
        assert info.value.code == 2
        assert words in _one_line_error(capsys, "check_delegation")


def test_diagram_is_replaced_atomically(pascal_513_os8, tmp_path, monkeypatch, capsys):
    import deeplab_nnapi.pictures.api as api

    out = tmp_path / "d.svg"
    out.write_bytes(b"old picture")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api, "atomic_write", broken, raising=False)
    import deeplab_nnapi.pictures.writing as writing

    monkeypatch.setattr(writing, "atomic_write", broken)
    assert check_main([str(pascal_513_os8), "--diagram", str(out)]) == 2
    assert "cannot write (No space left on device)" in _one_line_error(capsys, "check_delegation")
    assert out.read_bytes() == b"old picture" and _files(tmp_path) == ["d.svg"]


def test_a_bad_model_is_one_line_from_the_script(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "check_delegation.py"), str(bad),
                        "--diagram", str(tmp_path / "d.svg")], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "d.svg").exists()


# ----------------------------------------------------------------------------------------------------
# write_files: a set of pictures all or nothing


def test_write_files_puts_everything_back_when_one_fails(tmp_path, monkeypatch):
    from deeplab_nnapi.errors import UsageError
    from deeplab_nnapi.pictures import writing

    (tmp_path / "keep.png").write_bytes(b"old")
    real = writing.atomic_write
    calls = []

    def flaky(path, data, **kw):
        calls.append(Path(path).name)
        if Path(path).name == "c.png":
            raise OSError(13, "Permission denied")
        real(path, data, **kw)

    monkeypatch.setattr(writing, "atomic_write", flaky)
    files = [(tmp_path / "keep.png", b"new"), (tmp_path / "sub" / "b.png", b"b"), (tmp_path / "c.png", b"c")]
    with pytest.raises(UsageError, match="c.png: cannot write"):
        writing.write_files(files)
    assert (tmp_path / "keep.png").read_bytes() == b"old"
    assert _files(tmp_path) == ["keep.png"]  # b.png and the directory made for it are gone


# ----------------------------------------------------------------------------------------------------
# draw_pictures


def test_draw_pictures_compares_two_models(google_model, pascal_513_os8, photos, tmp_path, capsys):
    from deeplab_nnapi.cli.draw_pictures import main

    imgs = tmp_path / "photos"
    imgs.mkdir()
    from PIL import Image as PILImage

    PILImage.fromarray(photos["chelsea"].pixels[::2, ::2]).save(imgs / "cat.png")
    out = tmp_path / "out"
    rc = main([str(google_model), str(pascal_513_os8), "--labels", "original,fixed", "--images", str(imgs),
               "--out", str(out), "--json", "--quiet"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert _files(out) == ["cat.original_vs_fixed.png", "partitions.svg", "report.html"]
    (run,) = result["overlays"]
    assert run["models"] == ["original", "fixed"] and run["dataset"] == "pascal_voc_2012"
    assert 0.9 < run["agreement"][1] < 1.0
    assert {c["name"] for c in run["images"][0]["classes"][1]} == {"cat", "background"}


@pytest.mark.parametrize("args, words", [
    (["--dataset", "coco"], "unknown dataset 'coco'"),
    (["--labels", "a,b"], "--labels: 2 name(s) for 1 model(s)"),
    (["--images", "missing-dir"], "is not a directory"),
    (["--dataset", "cityscapes"], "dataset cityscapes has 19 classes but the model has 21"),
])
def test_draw_pictures_usage_errors(args, words, pascal_513_os8, tmp_path, capsys, litert):
    from deeplab_nnapi.cli.draw_pictures import main

    out = tmp_path / "out"
    assert main([str(pascal_513_os8), "--out", str(out), "--quiet", *args]) == 2
    assert words in _one_line_error(capsys, "draw_pictures")
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------
# export_models --overlays


def test_export_images_need_overlays(tmp_path, capsys):
    from deeplab_nnapi.cli.export_models import main

    graph = tmp_path / "g.pb"
    graph.write_bytes(b"")
    assert main(["--from-graph", str(graph), "--out", str(tmp_path / "out"), "--images", str(tmp_path)]) == 2
    assert "--images applies only with --overlays" in _one_line_error(capsys, "export_models")
