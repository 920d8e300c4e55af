"""fix_model --overlays: pictures of IN beside OUT next to OUT (diagram, overlays, report.html), drawn
from the agreement run's label maps, written with OUT all or nothing."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from deeplab_nnapi.cli.fix_model import build_parser, main  # noqa: E402
from deeplab_nnapi.fileio import sha256_file  # noqa: E402
from fix_support import google_shaped  # noqa: E402, F401  (skips without ai-edge-litert)


def _one_line_error(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fix_model: error: "), err
    return err[0]


def _png(data: bytes) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.links, self.numbers, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        if "src" in d:
            self.srcs.append(d["src"])
        if tag == "link" or (tag == "a" and "href" in d):
            self.links.append(d.get("href"))
        if tag == "td" and d.get("class") == "num":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.numbers.append(self._cell)
            self._cell = None


@pytest.fixture()
def photo_dir(tmp_path, sample_images):
    """Two photos as PNG files: coffee, where MEAN's rounding moves labels on this model (agreement < 100 %),
    and a chelsea cut to an odd size."""
    from PIL import Image as PILImage

    d = tmp_path / "photos"
    d.mkdir()
    by_name = {im.name: im for im in sample_images}
    PILImage.fromarray(by_name["coffee"].pixels).save(d / "coffee.png")
    PILImage.fromarray(np.ascontiguousarray(by_name["chelsea"].pixels[:251, :333])).save(d / "cat.png")
    return d


def test_overlays_write_diagram_sheets_and_report_from_the_agreement_run(google_file, photo_dir, tmp_path,
                                                                         capsys, monkeypatch):
    from deeplab_nnapi.images import load_images
    from deeplab_nnapi.pictures import node_groups, overlay, palettes
    from deeplab_nnapi.pictures.segment import Segmenter

    out = tmp_path / "fixed.tflite"
    argv = [str(google_file), str(out), "--overlays", "--images", str(photo_dir), "--json",
            "--min-agreement", "99"]
    with monkeypatch.context() as m:  # the pictures must not run the models a second time
        m.setattr(Segmenter, "load", classmethod(lambda *a, **k: pytest.fail("models run again")))
        assert main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    pics_dir = tmp_path / "fixed.pictures"
    assert "drawing the pictures" in captured.err
    names = ["cat.original_vs_fixed.png", "coffee.original_vs_fixed.png", "partitions.svg", "report.html"]
    assert sorted(p.name for p in pics_dir.iterdir()) == names  # no temporary files left
    assert out.is_file() and report["written"] and report["sha256_out"] == sha256_file(out)

    # --json names every picture file
    pics = report["pictures"]
    listed = pics["diagrams"] + [i["file"] for r in pics["overlays"] for i in r["images"]] + [pics["report"]]
    assert sorted(listed) == sorted(str(pics_dir / n) for n in names)

    # the diagram: IN (8 nodes) beside OUT (1 node), stock delegate at the default API 29 only
    groups = node_groups((pics_dir / "partitions.svg").read_bytes())
    assert sorted(groups) == [0, 1] and [len(groups[0]), len(groups[1])] == [8, 1]

    # each sheet: IN's and OUT's overlays side by side, each exactly the photo's size, drawn from the same
    # label maps the pictures module computes when it runs the models itself
    (run,) = pics["overlays"]
    assert run["models"] == ["original", "fixed"] and run["dataset"] == "pascal_voc_2012"
    seg_in = Segmenter.load(google_file, "original")
    seg_out = Segmenter.load(out, "fixed")
    pal = palettes.palette("pascal")
    photos = {im.name: im for im in load_images(photo_dir)}
    for entry in run["images"]:
        photo = photos[entry["image"]]
        h, w = photo.pixels.shape[:2]
        assert (entry["height"], entry["width"]) == (h, w)
        sheet = _png((pics_dir / f"{entry['image']}.original_vs_fixed.png").read_bytes())
        left = overlay.render_overlay(photo.pixels, seg_in.labels(photo), pal)
        right = overlay.render_overlay(photo.pixels, seg_out.labels(photo), pal)
        layout, places = overlay.side_by_side([left, right], ["original", "fixed"], "")
        assert sheet.shape == layout.shape
        (ya, xa), (yb, xb) = places
        assert (sheet[ya:ya + h, xa:xa + w] == left).all() and (sheet[yb:yb + h, xb:xb + w] == right).all()
    agree = {e["image"]: e["agreement"][1] for e in run["images"]}
    assert 0.99 < agree["cat"] <= 1.0 and 0.99 < agree["coffee"] < 1.0  # MEAN's rounding moves a few labels

    # report.html: one file, every picture inline; the same agreement figures as the JSON
    text = (pics_dir / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert page.links == [] and len(page.srcs) == 3  # the diagram and two sheets
    assert all(s.startswith("data:image/") for s in page.srcs)
    assert sum(s.startswith("data:image/svg+xml;base64,") for s in page.srcs) == 1
    checked = report["agreement"]["label_agreement_percent"]
    assert 99.0 < checked < 100.0
    found = re.search(r"label agreement ([0-9.]+) %", text)
    assert found and float(found.group(1)) == pytest.approx(checked, abs=5e-5)
    assert page.numbers == [f"{100.0 * agree[n]:.2f} %" for n in ("cat", "coffee")] + [
        f"{100.0 * run['agreement'][1]:.2f} %"]
    assert f"coffee: original | fixed — pixel agreement {100.0 * agree['coffee']:.2f} %" in text
    assert "rewrite op 70 ARG_MAX" in text


def test_text_report_names_the_pictures(google_file, photo_dir, tmp_path, capsys):
    assert main([str(google_file), str(tmp_path / "o.tflite"), "--overlays", "--images", str(photo_dir),
                 "--min-agreement", "99"]) == 0
    assert f"pictures: {tmp_path / 'o.pictures' / 'report.html'} (4 files)" in capsys.readouterr().out


@pytest.mark.parametrize("images", ["missing", "empty", "file"])
def test_bad_images_dir_is_one_line_and_nothing_written(google_file, tmp_path, capsys, images):
    bad = tmp_path / images
    if images == "empty":
        bad.mkdir()
    elif images == "file":
        bad.write_text("not a directory")
    line = _one_line_error(capsys, [str(google_file), str(tmp_path / "o.tflite"), "--overlays",
                                    "--images", str(bad)])
    assert "--images" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["google.tflite"] + (
        [images] if images != "missing" else []))


def test_failed_check_writes_neither_out_nor_pictures(google_file, photo_dir, tmp_path, capsys):
    out = tmp_path / "o.tflite"
    assert main([str(google_file), str(out), "--overlays", "--images", str(photo_dir), "--json",
                 "--min-agreement", "100"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["written"] and report["pictures"] is None
    assert not out.exists() and not (tmp_path / "o.pictures").exists()


def test_out_and_pictures_are_written_all_or_nothing(google_file, photo_dir, tmp_path, capsys):
    out = tmp_path / "o.tflite"
    out.write_bytes(b"old")
    (tmp_path / "o.pictures" / "report.html").mkdir(parents=True)  # the last file cannot be written
    line = _one_line_error(capsys, [str(google_file), str(out), "--overlays", "--images", str(photo_dir),
                                    "--min-agreement", "99", "--quiet"])
    assert "report.html: is a directory" in line
    assert out.read_bytes() == b"old", "OUT is put back"
    assert [p.name for p in (tmp_path / "o.pictures").iterdir()] == ["report.html"]  # no picture stays
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("case", ["no-agreement", "pictures-is-a-file", "pictures-is-out"])
def test_overlays_usage_errors(google_file, tmp_path, capsys, case):
    out = tmp_path / "o.tflite"
    argv = [str(google_file), str(out), "--overlays"]
    if case == "no-agreement":
        argv.append("--no-agreement")
        expected = "cannot go with --no-agreement"
    elif case == "pictures-is-a-file":
        (tmp_path / "o.pictures").write_text("x")
        expected = "exists and is not a directory"
    else:
        out = tmp_path / "o.pictures"
        argv[1] = str(out)
        expected = "would write its pictures to OUT itself"
    assert expected in _one_line_error(capsys, argv)
    assert not out.exists() or out.is_file() and out.read_text() == "x"


def test_help_explains_the_flag():
    text = build_parser().format_help()
    assert "--overlays" in text and "<OUT's stem>.pictures/" in text and "report.html" in text
    assert "not run again" in text
