"""deeplab_nnapi.images: sample photos, image files, DeepLab's resize-and-pad."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.errors import UsageError

images = pytest.importorskip("deeplab_nnapi.images")
pytest.importorskip("skimage")
pytest.importorskip("PIL")


def test_sample_images_are_rgb_uint8_and_named_in_order():
    got = images.sample_images()
    assert [i.name for i in got] == list(images.SAMPLE_NAMES)
    for im in got:
        assert im.pixels.dtype == np.uint8 and im.pixels.ndim == 3 and im.pixels.shape[2] == 3


def test_unknown_sample_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown sample image"):
        images.sample_images(["nope"])


def test_load_images_reads_png_and_npy_and_refuses_garbage(tmp_path):
    from PIL import Image as PILImage

    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    PILImage.fromarray(rgb).save(tmp_path / "a.png")
    np.save(tmp_path / "b.npy", rgb[:, :, 0])  # gray becomes RGB
    (tmp_path / "notes.txt").write_text("ignored")
    got = images.load_images(tmp_path)
    assert [i.name for i in got] == ["a", "b"]
    assert np.array_equal(got[0].pixels, rgb)
    assert got[1].pixels.shape == (4, 6, 3) and np.array_equal(got[1].pixels[..., 2], rgb[:, :, 0])
    (tmp_path / "c.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UsageError, match="c.jpg: cannot read image"):
        images.load_images(tmp_path)


def test_load_images_needs_a_directory_with_images(tmp_path):
    with pytest.raises(UsageError, match="is not a directory"):
        images.load_images(tmp_path / "missing")
    with pytest.raises(UsageError, match="no images"):
        images.load_images(tmp_path)


@pytest.mark.parametrize("shape", [(300, 451), (451, 300), (513, 513), (100, 700)])
def test_prepare_keeps_aspect_and_pads_with_zero_point(shape):
    pix = np.full((*shape, 3), 7, dtype=np.uint8)
    p = images.prepare(pix, 513, 513)
    assert p.input.shape == (513, 513, 3)
    nh, nw = p.valid
    assert max(nh, nw) == 513 and abs(nh / nw - shape[0] / shape[1]) < 0.02
    assert (p.input[:nh, :nw] == 7).all()
    assert (p.input[nh:] == images.PAD_VALUE).all() and (p.input[:, nw:] == images.PAD_VALUE).all()


@pytest.mark.parametrize("scale", [1, 8])
def test_restore_labels_puts_the_label_map_back_over_the_photo(scale):
    # labels painted on the crop: 1 on the photo's left half, 2 on its right half, 9 on the padding
    photo = np.zeros((300, 451, 3), np.uint8)
    p = images.prepare(photo, 513, 513)
    nh, nw = p.valid
    crop = np.full((513, 513), 9, np.int64)
    crop[:nh, : nw // 2] = 1
    crop[:nh, nw // 2: nw] = 2
    out = crop[scale // 2::scale, scale // 2::scale] if scale > 1 else crop  # a model's lower resolution
    got = images.restore_labels(out, (513, 513), p.valid, (300, 451))
    assert got.shape == (300, 451) and got.dtype == np.int32
    assert 9 not in got, "the padding is cut off"
    assert (got[:, :220] == 1).all() and (got[:, 231:] == 2).all()
