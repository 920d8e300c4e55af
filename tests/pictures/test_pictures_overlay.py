"""Segmentation overlays: label maps over photos at the photo's size, sensible segments from the reference
models, side-by-side sheets with the pixel agreement, written all or nothing; the HTML report."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from deeplab_nnapi.errors import UsageError  # noqa: E402
from deeplab_nnapi.images import Image  # noqa: E402
from deeplab_nnapi.pictures import overlay, palettes, render  # noqa: E402

PASCAL = palettes.palette("pascal")


def _png_size(data: bytes):
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return im.height, im.width


def _png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


# ----------------------------------------------------------------------------------------------------
# drawing, without models


def test_blend_keeps_background_and_tints_segments():
    photo = np.full((40, 60, 3), 100, np.uint8)
    labels = np.zeros((40, 60), np.int32)
    labels[10:30, 20:40] = 15  # person
    out = overlay.blend(photo, labels, PASCAL)
    assert (out[labels == 0] == 100).all(), "background pixels keep the photo"
    inside = out[15:25, 25:35].reshape(-1, 3)
    expected = np.rint((1 - overlay.ALPHA) * 100 + overlay.ALPHA * np.array([192, 128, 128]))
    assert (inside == expected).all()
    assert out[10, 25].tolist() == [192, 128, 128], "the segment's border is drawn in its colour"


@pytest.mark.parametrize("shape", [(37, 53), (300, 451), (513, 513), (427, 640)])
def test_overlay_has_the_photos_size_and_a_legend(shape):
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    labels = np.zeros(shape, np.int32)
    labels[: shape[0] // 2, : shape[1] // 3] = 8
    out = overlay.render_overlay(photo, labels, PASCAL)
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
    assert _png_size(render.encode_png(out)) == shape
    blended = overlay.blend(photo, labels, PASCAL)
    same = (out == blended).all(axis=2)
    if min(shape) < overlay.MIN_LEGEND_SIDE:
        assert same.all(), "no legend on a tiny photo"
    else:
        assert 0.5 < same.mean() < 1.0, "the photo is shown 1:1 except under the legend"


def test_legend_goes_to_the_emptiest_corner_and_lists_largest_classes_first():
    labels = np.zeros((100, 100), np.int32)
    labels[:60, :60] = 15
    labels[70:, 70:] = 8
    assert overlay._legend_corner(labels, PASCAL) == "upper right"
    shares = overlay.class_shares(labels, PASCAL)
    assert [s.name for s in shares] == ["background", "person", "cat"]
    assert abs(sum(s.fraction for s in shares) - 1.0) < 1e-9


def test_side_by_side_sheet_holds_both_panels_unchanged():
    a = np.full((50, 80, 3), 10, np.uint8)
    b = np.full((50, 80, 3), 200, np.uint8)
    sheet, places = overlay.side_by_side([a, b], ["original", "fixed"], "pixel agreement 97.50 %")
    (ya, xa), (yb, xb) = places
    assert (sheet[ya:ya + 50, xa:xa + 80] == a).all() and (sheet[yb:yb + 50, xb:xb + 80] == b).all()
    assert xb >= xa + 80 and sheet.shape[1] >= 160


# ----------------------------------------------------------------------------------------------------
# with the reference models (ai-edge-litert)


def _major_foreground(labels: np.ndarray) -> str:
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    return PASCAL.name(int(values[np.argmax(counts)])) if len(values) else "background"


def test_reference_model_segments_the_sample_photos_sensibly(pascal_513_os8, photos):
    from deeplab_nnapi.pictures.segment import Segmenter

    seg = Segmenter.load(pascal_513_os8)
    assert seg.input_size == (513, 513) and seg.num_classes == 21
    found = {}
    for name, expected in (("astronaut", "person"), ("chelsea", "cat"), ("motorcycle", "motorbike")):
        labels = seg.labels(photos[name])
        assert labels.shape == photos[name].pixels.shape[:2]
        found[name] = _major_foreground(labels)
        assert found[name] == expected, found
        assert 0.15 < float(np.mean(labels != 0)) < 0.9  # a segment, not the whole photo


def test_every_reference_model_gives_overlays_of_the_photos_size(reference_models, photos, tmp_path):
    from deeplab_nnapi.pictures import write_overlays

    photo = photos["chelsea"]  # 300 x 451
    for path in reference_models:
        run = write_overlays([path], [photo], tmp_path / path.stem)
        assert run.dataset == palettes.from_filename(path.name)
        (img,) = run.images
        assert img.path == tmp_path / path.stem / f"chelsea.{path.stem}.png" and img.path.is_file()
        assert _png_size(img.path.read_bytes()) == (300, 451)


def test_original_beside_fixed_with_pixel_agreement(google_model, pascal_513_os8, photos, tmp_path):
    from deeplab_nnapi.pictures import write_overlays
    from deeplab_nnapi.pictures.segment import Segmenter, agreement

    chosen = [Image("small", photos["motorcycle"].pixels[::2, ::2])]
    run = write_overlays([("original", google_model), ("fixed", pascal_513_os8)], chosen, tmp_path)
    assert run.models == ["original", "fixed"] and run.dataset == "pascal_voc_2012"
    assert [p.name for p in run.files] == ["small.original_vs_fixed.png"]
    g, f = Segmenter.load(google_model), Segmenter.load(pascal_513_os8)
    for img, photo in zip(run.images, chosen):
        want = agreement(g.labels(photo), f.labels(photo))
        assert img.agreement[0] is None and img.agreement[1] == pytest.approx(want)
        assert 0.9 < want < 1.0  # the resizes differ (align_corners), the segments agree
        # the sheet holds both overlays, each at the photo's size, side by side
        sheet = _png_pixels(img.path.read_bytes())
        h, w = photo.pixels.shape[:2]
        assert sheet.shape[0] > h and sheet.shape[1] >= 2 * w
        left = overlay.render_overlay(photo.pixels, g.labels(photo), PASCAL)
        right = overlay.render_overlay(photo.pixels, f.labels(photo), PASCAL)
        top = overlay.side_by_side([left, right], ["original", "fixed"], "")[1]
        (ya, xa), (yb, xb) = top
        assert (sheet[ya:ya + h, xa:xa + w] == left).all() and (sheet[yb:yb + h, xb:xb + w] == right).all()
    assert run.agreement()[1] == pytest.approx(run.images[0].agreement[1])


def test_overlays_are_written_all_or_nothing(pascal_513_os8, photos, tmp_path):
    from deeplab_nnapi.pictures import write_overlays

    broken = Image("broken", np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(Exception):  # noqa: B017 - whatever the model run says about an empty photo
        write_overlays([pascal_513_os8], [photos["chelsea"], broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="not a directory|cannot"):
        write_overlays([pascal_513_os8], [photos["chelsea"]], blocker / "sub")


def test_models_of_different_datasets_are_refused(reference_models, photos, tmp_path):
    by_name = {p.name: p for p in reference_models}
    pascal = by_name["deeplabv3_mnv2_pascal_257_os16_quant.tflite"]
    city = by_name["deeplabv3_mnv2_cityscapes_513_os16_dummy_quant.tflite"]
    from deeplab_nnapi.pictures import write_overlays

    with pytest.raises(UsageError, match="different numbers of classes"):
        write_overlays([pascal, city], [photos["chelsea"]], tmp_path)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------
# the report


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.links = [], []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        if tag in ("img", "script", "iframe", "embed", "object") and "src" in d:
            self.srcs.append(d["src"])
        if tag == "link":
            self.links.append(d.get("href"))


def test_run_pictures_report_is_one_file_with_every_picture_inline(google_model, pascal_513_os8, photos,
                                                                   tmp_path):
    from deeplab_nnapi.pictures import write_run_pictures

    pics = write_run_pictures([("original", google_model), ("fixed", pascal_513_os8)], tmp_path,
                              images=[photos["chelsea"]], title="original vs fixed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chelsea.original_vs_fixed.png", "partitions.svg",
                                                          "report.html"]
    text = pics.report.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(text)
    assert parser.links == [] and len(parser.srcs) == 2  # the diagram and the overlay sheet
    assert all(s.startswith("data:image/") for s in parser.srcs)
    assert sum(s.startswith("data:image/svg+xml;base64,") for s in parser.srcs) == 1
    assert "original vs fixed" in text and "pixel agreement" in text
    for label in ("original", "fixed"):
        assert label in text
    # the partition sheet: both models under the stock and the patched delegate
    from deeplab_nnapi.pictures import node_groups

    groups = node_groups((tmp_path / "partitions.svg").read_bytes())
    assert [len(groups[k]) for k in range(4)] == [8, 6, 3, 1]


def test_label_maps_given_are_drawn_without_running_the_models(pascal_513_os8, photos, monkeypatch):
    from deeplab_nnapi.pictures import draw_overlays
    from deeplab_nnapi.pictures.segment import Segmenter

    monkeypatch.setattr(Segmenter, "load", classmethod(lambda *a, **k: pytest.fail("a model was run")))
    photo = photos["chelsea"]
    h, w = photo.pixels.shape[:2]
    a = np.zeros((h, w), np.int32)
    a[50:200, 100:300] = 8  # cat
    b = a.copy()
    b[50:60, 100:300] = 0
    run = draw_overlays([("original", pascal_513_os8), ("fixed", pascal_513_os8)], [photo], maps=[[a, b]])
    assert run.dataset == "pascal_voc_2012"  # from the model's 21 classes
    (img,) = run.images
    assert img.agreement[1] == pytest.approx(1.0 - 10 * 200 / (h * w))
    assert [s.name for s in img.classes[0]] == ["background", "cat"]
    sheet = _png_pixels(img.png)
    left = overlay.render_overlay(photo.pixels, a, PASCAL)
    (ya, xa), _ = overlay.side_by_side([left, left], ["original", "fixed"], "")[1]
    assert (sheet[ya:ya + h, xa:xa + w] == left).all()
    with pytest.raises(ValueError, match="photo's size"):
        draw_overlays([("a", pascal_513_os8), ("b", pascal_513_os8)], [photo], maps=[[a, b[:-1]]])
    with pytest.raises(ValueError, match=r"for 2 photo\(s\), but 1 photo\(s\) given"):
        draw_overlays([("a", pascal_513_os8), ("b", pascal_513_os8)], [photo], maps=[[a, b], [a, b]])
