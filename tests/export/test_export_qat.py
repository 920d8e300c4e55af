"""QAT checkpoints without contrib.quantize: batch norm folding, contrib's names, ranges into the model."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.export import bnfold, qat
from deeplab_nnapi.export.variants import ConverterSettings

pytestmark = pytest.mark.tensorflow

INPUT = "MobilenetV2/MobilenetV2/input"


def _graph_def(tf, data: bytes):
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(data)
    return gd


def _run(tf, gd, fetch: str, x: np.ndarray) -> np.ndarray:
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g) as sess:
        return sess.run(fetch + ":0", {INPUT + ":0": x})


def _input(seed: int = 0) -> np.ndarray:
    import fake_deeplab_tree as fake
    from deeplab_nnapi.export.verify import test_image

    return (test_image(fake.CROP, fake.CROP, seed).astype(np.float32) - 128.0) / 127.0


def test_folding_batch_norms_keeps_the_float_result(tf, tiny_qat):
    gd = _graph_def(tf, tiny_qat.frozen)
    folded, count = bnfold.fold_batch_norms(gd, ["ArgMax"])
    ops = [n.op for n in folded.node]
    assert count == 15 and "FusedBatchNormV3" not in ops  # 14 conv layers + depthwise with BatchToSpaceND
    names = {n.name for n in folded.node}
    assert {"MobilenetV2/Conv/mul_fold", "MobilenetV2/Conv/add_fold",
            "MobilenetV2/expanded_conv_3/depthwise/add_fold", "aspp0/add_fold"} <= names
    x = _input()
    want = _run(tf, gd, "logits/semantic/BiasAdd", x)
    got = _run(tf, folded, "logits/semantic/BiasAdd", x)
    assert np.abs(want).max() > 1.0  # not a degenerate network
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_points_carry_contrib_quantize_names(tf, tiny_qat):
    import fake_deeplab_tree as fake

    folded, _ = bnfold.fold_batch_norms(_graph_def(tf, tiny_qat.frozen), ["ArgMax"])
    points = qat.quant_points(folded, INPUT, "ArgMax")
    assert sorted(p.name for p in points) == fake.QUANT_POINTS
    by_name = {p.name: p for p in points}
    assert by_name["MobilenetV2/Conv/weights_quant"].node == "MobilenetV2/Conv/mul_fold"
    assert all(p.narrow_range == (p.kind == "weights") for p in points)
    assert by_name["MobilenetV2/Conv/act_quant"].node == "MobilenetV2/Conv/Relu6"
    assert by_name["MobilenetV2/expanded_conv_3/project/act_quant"].node == \
        "MobilenetV2/expanded_conv_3/project/Identity"
    assert by_name["MobilenetV2/expanded_conv_3/post_activation_bypass_quant"].node == \
        "MobilenetV2/expanded_conv_3/add"
    assert by_name["logits/semantic/act_quant"].node == "logits/semantic/BiasAdd"  # last layer: its bias add


def _scale(m, sg, t) -> float:
    return float(sg.Tensors(t).Quantization().Scale(0))


def _ops(model: bytes):
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        out.append((names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())], op))
    return m, sg, out


def test_checkpoint_ranges_become_the_models_quantization(tf, tiny_qat):
    """The ranges the test wrote under contrib's names are the scales of the converted uint8 model."""
    import fake_deeplab_tree as fake
    from deeplab_nnapi.export.convert import convert_frozen_graph
    from deeplab_nnapi.export.verify import verify_model

    folded, _ = bnfold.fold_batch_norms(_graph_def(tf, tiny_qat.frozen), ["ArgMax"])
    points = qat.quant_points(folded, INPUT, "ArgMax")
    ranges, missing = qat.ranges_from_checkpoint(str(tiny_qat.checkpoint), points)
    assert not missing and set(ranges) == set(tiny_qat.ranges)
    for name, (lo, hi) in tiny_qat.ranges.items():
        assert ranges[name] == pytest.approx((lo, hi)), name
    shared, joined = qat.share_concat_ranges(folded, points, ranges)
    assert joined == [["aspp0/act_quant", "image_pooling/act_quant"]]
    union = (min(ranges[n][0] for n in joined[0]), max(ranges[n][1] for n in joined[0]))
    assert shared["image_pooling/act_quant"] == shared["aspp0/act_quant"] == union
    gd = qat.insert_fake_quants(folded, points, shared)
    assert sum(n.op == "FakeQuantWithMinMaxVars" for n in gd.node) == len(points)

    conv = convert_frozen_graph(gd.SerializeToString(), ConverterSettings(), (fake.CROP, fake.CROP), "qat")
    v = verify_model(conv.model, fake.NUM_CLASSES, (fake.CROP, fake.CROP))
    assert v.ok, v.problems
    m, sg, ops = _ops(conv.model)
    kinds = [k for k, _ in ops]
    assert "QUANTIZE" not in kinds and kinds.count("ADD") == 1 and kinds[-1] == "ARG_MAX"

    def span(name, levels=255):
        lo, hi = tiny_qat.ranges[name]
        return (hi - lo) / levels

    add = next(op for k, op in ops if k == "ADD")
    assert _scale(m, sg, add.Outputs(0)) == pytest.approx(
        span("MobilenetV2/expanded_conv_3/post_activation_bypass_quant"), rel=1e-5)
    first_conv = next(op for k, op in ops if k == "CONV_2D")
    assert _scale(m, sg, first_conv.Outputs(0)) == pytest.approx(span("MobilenetV2/Conv/act_quant"), rel=1e-5)
    assert _scale(m, sg, first_conv.Inputs(1)) == pytest.approx(
        span("MobilenetV2/Conv/weights_quant", 254), rel=1e-5)  # narrow range: 254 steps
    concat = next(op for k, op in ops if k == "CONCATENATION")
    for i in range(2):
        assert _scale(m, sg, concat.Inputs(i)) == pytest.approx((union[1] - union[0]) / 255, rel=1e-5)
    resizes = [op for k, op in ops if k == "RESIZE_BILINEAR"]
    assert _scale(m, sg, resizes[-1].Inputs(0)) == pytest.approx(span("logits/semantic/act_quant"), rel=1e-5)


def test_checkpoint_without_ranges_is_refused_unless_fallback(tf, tiny_qat, tmp_path):
    import fake_deeplab_tree as fake
    from deeplab_nnapi.export import deeplab_graph

    v1 = tf.compat.v1
    partial = tmp_path / "partial.ckpt"
    g = tf.Graph()
    with g.as_default():  # a checkpoint with every range but the residual add's
        for name, (lo, hi) in tiny_qat.ranges.items():
            if "bypass" not in name:
                v1.get_variable(f"{name}/min", initializer=np.float32(lo))
                v1.get_variable(f"{name}/max", initializer=np.float32(hi))
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(partial), write_meta_graph=False)
    req = {"output_array": "ArgMax", "input_array": INPUT, "weights": "checkpoint",
           "checkpoint": str(partial), "qat_fallback_default_ranges": False, "crop_size": fake.CROP}
    frozen = _graph_def(tf, tiny_qat.frozen)
    with pytest.raises(deeplab_graph.GraphBuildError) as exc:
        deeplab_graph.quantize(frozen, req)
    msg = str(exc.value)
    assert f"no quantization range for 1 of {len(fake.QUANT_POINTS)} tensors" in msg
    assert "MobilenetV2/expanded_conv_3/post_activation_bypass_quant/min" in msg
    assert "qat_fallback_default_ranges" in msg
    gd, info = deeplab_graph.quantize(frozen, {**req, "qat_fallback_default_ranges": True})
    assert info["default_range"] == ["MobilenetV2/expanded_conv_3/post_activation_bypass_quant"]
    assert sum(n.op == "FakeQuantWithMinMaxVars" for n in gd.node) == len(fake.QUANT_POINTS) - 1


def test_measured_ranges_hold_zero_and_cover_the_activations(tf, tiny_qat):
    folded, _ = bnfold.fold_batch_norms(_graph_def(tf, tiny_qat.frozen), ["ArgMax"])
    points = qat.quant_points(folded, INPUT, "ArgMax")
    x = [_input(s) for s in range(2)]
    ranges = qat.measure_ranges(folded, points, INPUT, x)
    assert set(ranges) == {p.name for p in points}
    assert all(lo <= 0.0 <= hi and hi > lo for lo, hi in ranges.values())
    relu6 = ranges["MobilenetV2/Conv/act_quant"]
    assert relu6[0] == 0.0 and 0.0 < relu6[1] <= 6.0
    out = np.concatenate([_run(tf, folded, "logits/semantic/BiasAdd", xi).ravel() for xi in x])
    assert ranges["logits/semantic/act_quant"] == pytest.approx((min(out.min(), 0), max(out.max(), 0)))
