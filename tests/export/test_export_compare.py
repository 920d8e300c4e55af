"""Exported model beside a reference model (export/compare.py), on the published models themselves."""

from __future__ import annotations

import json

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


# ----------------------------------------------------------------------------------------------------
# tensor by tensor (tensor_fidelity, tools/compare_models.py)

PASCAL_257_OS16 = MODELS_DIR / "deeplabv3_mnv2_pascal_257_os16_quant.tflite"
PASCAL_257_OS8 = MODELS_DIR / "deeplabv3_mnv2_pascal_257_os8_quant.tflite"


def _one_weight_changed(data: bytes, op: int, flat_index: int) -> bytes:
    """The model with one uint8 weight of ``op`` moved by one step."""
    from deeplab_nnapi.fixer.model_io import read_model, write_model
    from deeplab_nnapi.nnapi.tflite_model import load_model

    w = load_model(data).operators[op].inputs[1]
    m = read_model(data)
    buf = m.buffers[m.subgraphs[0].tensors[w].buffer]
    values = bytearray(bytes(buf.data))
    values[flat_index] = (values[flat_index] + 1) % 256
    buf.data = list(values)
    return write_model(m, len(data))


def test_a_model_is_identical_to_itself_tensor_by_tensor():
    from deeplab_nnapi.export.compare import tensor_fidelity

    f = tensor_fidelity(PASCAL_257_OS16, PASCAL_257_OS16)
    assert f.identical and f.same_op_sequence and not f.unmatched
    kinds = f.by_kind()
    # constants: the resize sizes and the argmax axis (this file keeps the two equal 17x17 sizes apart)
    assert {k: kinds[k]["tensors"] for k in kinds} == {"input": 1, "weights": 55, "bias": 55,
                                                        "activation": 70, "constant": 4, "output": 1}
    assert kinds["weights"]["values"] == 2080448 and kinds["bias"]["values"] == 16565


def test_one_changed_weight_is_counted_where_it_is(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")  # the edit goes through the fixer's schema object API
    from deeplab_nnapi.cli.compare_models import main

    changed = tmp_path / "changed.tflite"
    changed.write_bytes(_one_weight_changed(PASCAL_257_OS16.read_bytes(), 12, 100))
    assert main([str(changed), str(PASCAL_257_OS16)]) == 1
    out = capsys.readouterr().out
    assert "differs" in out.splitlines()[0]
    line = next(ln for ln in out.splitlines() if "expanded_conv_3/project in1" in ln)
    assert "1 of 4608 values differ (max 1)" in line and line.strip().startswith("weights")
    assert main([str(changed), str(PASCAL_257_OS16), "--json", "--tensors", "none"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["by_kind"]["weights"]["differing_values"] == 1 and d["by_kind"]["bias"]["differing_values"] == 0
    assert d["quantization_equal"] and d["same_op_sequence"] and not d["same"]


def test_other_stride_shows_as_option_and_shape_differences(capsys):
    from deeplab_nnapi.cli.compare_models import main

    assert main([str(PASCAL_257_OS8), str(PASCAL_257_OS16), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["same_op_sequence"] and not d["shapes_equal"] and d["quantization_equal"]
    assert d["by_kind"]["weights"]["differing_values"] == d["by_kind"]["bias"]["differing_values"] == 0
    assert any("expanded_conv_7/depthwise: dilation_wfactor 2, reference 1" in o
               for o in d["option_differences"])
    # what differs: activation shapes from expanded_conv_6 on (33x33 against 17x17), and the resize sizes
    assert {t["kind"] for t in d["tensors"]} == {"activation", "constant"}
    assert all(t["values"] == 2 for t in d["tensors"] if t["kind"] == "constant")


def test_labels_need_the_same_input_size(capsys):
    from deeplab_nnapi.cli.compare_models import main

    assert main([str(PASCAL_257_OS16), str(PASCAL_513_OS8), "--labels"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--labels needs the same input size" in err and len(err.splitlines()) == 1
