"""Exported model beside a reference model (export/compare.py), on the published models themselves."""

from __future__ import annotations

import pytest
from deeplab_nnapi.export.compare import compare, reference_for  # noqa: E402
from reference_support import MODELS_DIR, PASCAL_513_OS8  # noqa: E402


def test_a_reference_model_agrees_with_itself():
    c = compare(PASCAL_513_OS8, PASCAL_513_OS8)
    assert c.same and not c.notes
    assert c.model.op_count == 71 and c.model.partitions == 1
    assert c.model.input == {"type": "UINT8", "shape": [1, 513, 513, 3], "scale": pytest.approx(1 / 127),
                             "zero_point": 128}
    assert c.model.output == {"type": "INT32", "shape": [1, 513, 513]}


def test_qat_and_dummy_references_differ_only_in_the_order_of_two_ops():
    c = compare(PASCAL_513_OS8, MODELS_DIR / "deeplabv3_mnv2_cityscapes_513_os8_dummy_quant.tflite")
    assert c.same
    assert c.notes == ["same ops in another order at [63, 64]: RESIZE_BILINEAR (reference CONV_2D), "
                       "CONV_2D (reference RESIZE_BILINEAR)"]


def test_different_shapes_are_differences():
    c = compare(PASCAL_513_OS8, MODELS_DIR / "deeplabv3_mnv2_pascal_257_os8_quant.tflite")
    assert not c.same and any(d.startswith("input shape") for d in c.differences)


def test_reference_names():
    assert reference_for("deeplabv3_mnv2_pascal_513_os8_quant", MODELS_DIR) == PASCAL_513_OS8
    assert reference_for("deeplabv3_mnv2_ade20k_513_os16_quant", MODELS_DIR).name == \
        "deeplabv3_mnv2_ade20k_513_os16_dummy_quant.tflite"
    assert reference_for("nope", MODELS_DIR) is None
