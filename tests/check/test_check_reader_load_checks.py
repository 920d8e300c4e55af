"""TFLite's load-time checks, which the predictor's reader makes too: a model TFLite refuses to load gets no
plan. Each case was found by the fuzzed differential run against the real delegate (docs/probe.md)."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.tflite_model import load_model

pytest.importorskip("ai_edge_litert")

from deeplab_nnapi.probe.modelgen import Graph, build_model, spec  # noqa: E402


def resize_model() -> bytes:
    return build_model(spec("resize", op="RESIZE_BILINEAR", dtype="UINT8", align_corners=True,
                            half_pixel_centers=False, size="const", in_hw=(4, 4), out_hw=(8, 8), version=3))


def test_the_operator_code_is_the_larger_of_the_two_fields():
    s = Graph().s
    model = s.ModelT.InitFromPackedBuf(resize_model(), 0)
    code = model.operatorCodes[0]
    assert code.builtinCode == s.BuiltinOperator.RESIZE_BILINEAR
    code.deprecatedBuiltinCode = 0  # TFLite: max(builtin_code, deprecated) is still RESIZE_BILINEAR
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    m = load_model(bytes(b.Output()))
    assert m.operators[0].op_type == "RESIZE_BILINEAR"


def _graph_with(mutate) -> bytes:
    g = Graph()
    x = g.input([1, 4, 4, 3], "UINT8")
    y = g.tensor([1, 4, 4, 3], "UINT8")
    g.op("RELU6", [x], [y])
    mutate(g)
    return g.finish([y])


@pytest.mark.parametrize("mutate, words", [
    (lambda g: setattr(g.tensors[0].quantization, "zeroPoint", [128, 128]), "2 zero points for 1 scales"),
    (lambda g: setattr(g.tensors[0], "shape", [1, -4, 4, 3]), "negative dimension"),
    (lambda g: setattr(g.tensors[0], "shape", [1 << 30, 1 << 30, 1 << 30, 3]), "overflows"),
    (lambda g: g.codes.__setitem__(0, (g.codes[0][0], 0)), "version 0 is not a version"),
    (lambda g: g.codes.__setitem__(0, (g.codes[0][0], 1 << 20)), "is not a version of that op"),
])
def test_what_tflite_refuses_to_load_is_refused(mutate, words):
    with pytest.raises(UsageError, match=words):
        load_model(_graph_with(mutate))


def test_a_constant_shorter_than_its_shape_is_refused():
    g = Graph()
    x = g.input([1, 4, 4, 3], "UINT8")
    w = g.const(np.zeros(3, np.uint8), "UINT8", shape=[1, 4, 4, 3])  # 3 bytes for 48 elements
    y = g.tensor([1, 4, 4, 3], "UINT8")
    g.op("ADD", [x, w], [y], g.options("AddOptionsT", fusedActivationFunction=0))
    with pytest.raises(UsageError, match="buffer holds 3 bytes.*needs 48"):
        load_model(g.finish([y]))
