"""Palettes: the three datasets' classes and colours, and which palette a model gets."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.pictures import palettes


@pytest.mark.parametrize("key,n,first,last", [
    ("pascal_voc_2012", 21, "background", "tvmonitor"),
    ("cityscapes", 19, "road", "bicycle"),
    ("ade20k", 151, "other", "flag"),
])
def test_each_dataset_has_its_classes_in_distinct_colours(key, n, first, last):
    pal = palettes.palette(key)
    assert len(pal) == n and pal.colors.shape == (n, 3) and pal.colors.dtype == np.uint8
    assert (pal.names[0], pal.names[-1]) == (first, last)
    assert len({tuple(c) for c in pal.colors.tolist()}) == n, "two classes share a colour"
    assert len(set(pal.names)) == n


def test_pascal_colours_are_the_voc_devkit_colormap():
    pal = palettes.palette("pascal")
    assert pal.names[15] == "person" and pal.color(15) == (192, 128, 128)
    assert pal.names[8] == "cat" and pal.color(8) == (64, 0, 0)
    assert pal.names[14] == "motorbike" and pal.color(14) == (64, 128, 128)
    assert pal.color(1) == (128, 0, 0) and pal.color(0) == (0, 0, 0) and pal.background == 0


def test_cityscapes_and_ade20k_colours():
    city = palettes.palette("cityscapes")
    assert city.color(0) == (128, 64, 128) and city.names[11] == "person" and city.color(11) == (220, 20, 60)
    assert city.background is None  # every pixel is one of the 19 classes
    ade = palettes.palette("ADE20K")
    assert ade.names[1] == "wall" and ade.color(1) == (120, 120, 120) and ade.names[13] == "person"
    assert ade.names[49] == "skyscraper" and ade.color(49) != ade.color(7)


def test_palette_choice():
    assert palettes.choose_palette(num_classes=21).key == "pascal_voc_2012"
    assert palettes.choose_palette(num_classes=19).key == "cityscapes"
    assert palettes.choose_palette(num_classes=151).key == "ade20k"
    by_name = palettes.choose_palette(filename="deeplabv3_mnv2_ade20k_513_os8_dummy_quant.tflite")
    assert by_name.key == "ade20k"
    assert palettes.choose_palette("custom", num_classes=19).key == "cityscapes"  # export's ad-hoc variants
    generic = palettes.choose_palette(num_classes=5)
    assert generic.key == "generic" and len(generic) == 5 and generic.names[4] == "class 4"
    with pytest.raises(UsageError, match="has 21 classes but the model has 19"):
        palettes.choose_palette("pascal", num_classes=19)
    with pytest.raises(UsageError, match="unknown dataset 'coco'"):
        palettes.palette("coco")


def test_colorize_maps_labels_and_tolerates_labels_outside_the_palette():
    pal = palettes.palette("cityscapes")
    rgb = pal.colorize(np.array([[0, 11], [18, 40]]))
    assert rgb[0, 0].tolist() == [128, 64, 128] and rgb[0, 1].tolist() == [220, 20, 60]
    assert rgb[1, 0].tolist() == [119, 11, 32] and rgb[1, 1].tolist() == [0, 0, 0]
