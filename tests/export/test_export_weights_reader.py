"""Reading a quantized DeepLab .tflite for --weights-from (export/tflite_weights.py), on the published models:
layers, ranges, size, classes, output stride; refusals naming the first tensor; the converter-exact ranges
(scale, zero point and the bias scales they make); the mapping onto graph variables."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.export import tflite_weights as tw
from reference_support import MODELS_DIR, REFERENCE_MODELS, google_shaped

PASCAL_257_OS16 = MODELS_DIR / "deeplabv3_mnv2_pascal_257_os16_quant.tflite"
CITY_513_OS16 = MODELS_DIR / "deeplabv3_mnv2_cityscapes_513_os16_dummy_quant.tflite"

EXPECTED = {  # file stem: (classes, input size, output stride, dummy)
    "deeplabv3_mnv2_pascal_513_os8_quant": (21, 513, 8, False),
    "deeplabv3_mnv2_pascal_513_os16_quant": (21, 513, 16, False),
    "deeplabv3_mnv2_pascal_257_os8_quant": (21, 257, 8, False),
    "deeplabv3_mnv2_pascal_257_os16_quant": (21, 257, 16, False),
    "deeplabv3_mnv2_cityscapes_513_os8_dummy_quant": (19, 513, 8, True),
    "deeplabv3_mnv2_cityscapes_513_os16_dummy_quant": (19, 513, 16, True),
    "deeplabv3_mnv2_ade20k_513_os8_dummy_quant": (151, 513, 8, True),
    "deeplabv3_mnv2_ade20k_513_os16_dummy_quant": (151, 513, 16, True),
}


@pytest.mark.parametrize("path", REFERENCE_MODELS, ids=lambda p: p.stem)
def test_every_published_model_maps_onto_deeplab(path):
    s = tw.read_source(path)
    classes, size, stride, dummy = EXPECTED[path.stem]
    assert (s.num_classes, s.input_size, s.output_stride, s.dummy) == (classes, (size, size), stride, dummy)
    # 55 layers (MobileNetV2's 52 + image pooling, aspp0, projection, logits: 55 with Conv), 120 ranges:
    # 55 weights, 55 activations, 10 residual adds -- the ranges contrib.quantize names
    assert len(s.layers) == 55 and len(s.ranges) == 120
    assert sum(n.endswith("/post_activation_bypass_quant") for n in s.ranges) == 10
    assert {"MobilenetV2/Conv", "MobilenetV2/expanded_conv/depthwise", "MobilenetV2/expanded_conv_16/project",
            "image_pooling", "aspp0", "concat_projection", "logits/semantic"} <= set(s.layers)
    assert "MobilenetV2/expanded_conv/expand" not in s.layers  # the first block has no expansion
    assert s.input_quant.zero_point == 128 and np.float32(s.input_quant.scale) == np.float32(1 / 127)
    assert not s.align_corners and s.argmax_type == "INT32"


def test_weights_come_back_in_tensorflows_layout():
    s = tw.read_source(PASCAL_257_OS16)
    conv, dw = s.layers["MobilenetV2/Conv"], s.layers["MobilenetV2/expanded_conv/depthwise"]
    assert conv.weights_q.shape == (32, 3, 3, 3) and conv.weights_float().shape == (3, 3, 3, 32)
    assert dw.weights_q.shape == (1, 3, 3, 32) and dw.weights_float().shape == (3, 3, 32, 1)
    # value for value: out channel 5, row 1, column 2, in channel 0
    q = conv.weights_quant
    assert conv.weights_float()[1, 2, 0, 5] == np.float32((int(conv.weights_q[5, 1, 2, 0]) - q.zero_point)
                                                          * np.float32(q.scale))
    assert conv.narrow_range  # contrib.quantize's weights: [1, 255]
    assert conv.bias_float().dtype == np.float32 and conv.bias_float().shape == (32,)
    # the dummy models' weights were quantized with the default range (0, 6) too: zeros, full range
    city = tw.read_source(CITY_513_OS16).layers["MobilenetV2/Conv"]
    assert city.weights_quant.zero_point == 0 and not city.narrow_range
    assert (city.weights_float() >= 0).all()


def test_google_shaped_model_has_the_same_layers(tmp_path):
    p = tmp_path / "google.tflite"
    p.write_bytes(google_shaped(PASCAL_257_OS16.read_bytes()))
    g, ours = tw.read_source(p), tw.read_source(PASCAL_257_OS16)
    assert g.align_corners and g.argmax_type == "INT64"
    assert set(g.layers) == set(ours.layers) and g.ranges == ours.ranges


def _renamed(data: bytes, index: int, name: str) -> bytes:
    from deeplab_nnapi.fixer.model_io import read_model, write_model

    m = read_model(data)
    m.subgraphs[0].tensors[index].name = name.encode()
    return write_model(m, len(data))


def test_a_tensor_that_does_not_fit_is_refused_by_name(tmp_path):
    pytest.importorskip("ai_edge_litert")  # the renaming goes through the fixer's schema object API
    from deeplab_nnapi.nnapi.tflite_model import load_model

    data = PASCAL_257_OS16.read_bytes()
    m = load_model(data)
    w = m.operators[5].inputs[1]  # expanded_conv_1/project's weights
    p = tmp_path / "bad.tflite"
    p.write_bytes(_renamed(data, w, "Something/else/weights_quant/FakeQuantWithMinMaxVars"))
    with pytest.raises(UsageError) as e:
        tw.read_source(p)
    assert f"tensor {w} 'Something/else/weights_quant" in str(e.value) and "op 5 CONV_2D" in str(e.value)
    assert "\n" not in str(e.value)


def test_not_a_deeplab_model_is_refused(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"TFL3 not really")
    with pytest.raises(UsageError, match="not a valid TensorFlow Lite model"):
        tw.read_source(p)


@pytest.mark.parametrize("path", REFERENCE_MODELS, ids=lambda p: p.stem)
def test_ranges_give_back_every_scale_zero_point_and_bias_scale(path, tmp_path):
    """The converter's arithmetic on the chosen float32 min/max: the model's float32 scale and zero point
    for all 120 ranges, and input scale x weights scale (double) = the model's bias scale for all 55."""
    from deeplab_nnapi.export.qat import QuantPoint

    s = tw.read_source(path)
    tw.write_package(s, tmp_path / "p.npz")
    pkg = tw.load_package(tmp_path / "p.npz")
    points = [QuantPoint(n, n, "weights" if n.endswith("/weights_quant") else "activation") for n in s.ranges]
    ranges, narrow, inexact = tw.ranges_for(points, pkg, 1.0 / 127.0)
    assert inexact == []
    for name, (tensor, q) in s.ranges.items():
        lo, hi = ranges[name]
        qmin = 1 if narrow.get(name) else 0
        scale, zp = tw._scale_and_zero_point(np.array([lo], np.float32), np.array([hi], np.float32),
                                             qmin, 255)
        assert np.float32(scale[0]) == np.float32(q.scale) and zp[0] == q.zero_point, (name, tensor)


def test_naive_ranges_miss_some_bias_scales():
    """Why the ranges are searched: min = -zp * scale, max = (255 - zp) * scale give the right scales but
    not always the bias scale TF 1.x's converter computed (here for some of pascal's 55 layers)."""
    s = tw.read_source(PASCAL_257_OS16)
    missed = 0
    for layer in s.layers.values():
        if layer.input_range == tw.INPUT_RANGE:
            d_in = 1.0 / 127.0
        else:
            q = s.ranges[layer.input_range][1]
            d_in = tw.exact_range(q.scale, q.zero_point)[2]
        d_w = tw.exact_range(layer.weights_quant.scale, layer.weights_quant.zero_point, layer.narrow_range)[2]
        missed += np.float32(d_in * d_w) != np.float32(layer.bias_scale)
    assert missed > 0


def test_identity_batch_norm_multiplies_by_exactly_one():
    for eps in (1e-3, 1e-5, 0.001):
        v = tw.identity_variance(eps)
        assert np.float32(v + np.float32(eps)) == np.float32(1.0)
        assert np.float32(1.0) / np.sqrt(np.float32(v + np.float32(eps))) == np.float32(1.0)


def _package(tmp_path):
    tw.write_package(tw.read_source(PASCAL_257_OS16), tmp_path / "p.npz")
    return tw.load_package(tmp_path / "p.npz")


def _graph_variables(pkg):
    out = []
    for scope, info in pkg.meta["layers"].items():
        w = pkg.arrays[f"{scope}:weights"]
        leaf = "depthwise_weights" if info["kind"] == "depthwise" else "weights"
        out.append((f"{scope}/{leaf}", w.shape))
        n = w.shape[-1] if info["kind"] == "conv" else w.shape[2]
        if scope == "logits/semantic":
            out.append((f"{scope}/biases", (n,)))
        else:
            out += [(f"{scope}/BatchNorm/{k}", (n,)) for k in ("gamma", "beta", "moving_mean",
                                                                 "moving_variance")]
    return out


def test_variables_get_weights_biases_and_identity_batch_norms(tmp_path):
    pkg = _package(tmp_path)
    variables = _graph_variables(pkg)
    eps = {f"{s}/BatchNorm": 1e-3 for s in pkg.meta["layers"]}
    values = tw.variable_values(variables, pkg, eps)
    assert len(values) == len(variables) == 55 + 54 * 4 + 1
    assert (values["MobilenetV2/Conv/BatchNorm/gamma"] == 1).all()
    assert (values["MobilenetV2/Conv/BatchNorm/moving_mean"] == 0).all()
    np.testing.assert_array_equal(values["MobilenetV2/Conv/BatchNorm/beta"],
                                  pkg.arrays["MobilenetV2/Conv:bias"])
    np.testing.assert_array_equal(values["logits/semantic/biases"], pkg.arrays["logits/semantic:bias"])


def test_variables_that_do_not_fit_name_the_models_tensor(tmp_path):
    pkg = _package(tmp_path)
    variables = _graph_variables(pkg)
    eps = {f"{s}/BatchNorm": 1e-3 for s in pkg.meta["layers"]}
    # the graph has 19 classes, the model 21
    wrong = [(n, (1, 1, 256, 19)) if n == "logits/semantic/weights" else (n, s) for n, s in variables]
    with pytest.raises(tw.WeightsError,
                       match=r"tensor 'logits/semantic/weights_quant/FakeQuantWithMinMaxVars' holds "
                             r"\[1, 1, 256, 21\].*logits/semantic/weights is \[1, 1, 256, 19\]"):
        tw.variable_values(wrong, pkg, eps)
    # a layer the graph does not have (aspp1) / a layer of the model the graph lacks (aspp0)
    with pytest.raises(tw.WeightsError, match="aspp1/weights .* has no layer 'aspp1'"):
        tw.variable_values(variables + [("aspp1/weights", (1, 1, 320, 256))], pkg, eps)
    with pytest.raises(tw.WeightsError,
                       match="tensor 'aspp0/weights_quant/FakeQuantWithMinMaxVars' .*no such layer"):
        tw.variable_values([v for v in variables if not v[0].startswith("aspp0/")], pkg, eps)


def test_implied_activations():
    assert tw.implied_by_range("RELU", 0.03, 0)  # [0, 7.65]: ReLU clamps nothing
    assert not tw.implied_by_range("RELU", 0.03, 10)  # [-0.3, ...]: it does
    assert not tw.implied_by_range("RELU6", 0.023529469966888428, 0)  # 255 * s = 6.0000148 > 6
    assert tw.implied_by_range("RELU6", 6 / 256, 0)
    assert tw.implied_by_range("NONE", 1.0, 77)


def test_a_pool_over_the_delegates_limit_becomes_mean():
    """What an export at a large crop gets (a whole-map pool over the patched delegate's 65x65): here the
    stock delegate's 256 limit on the published 513 os8 model's 65x65 pool, the same rewrite."""
    pytest.importorskip("ai_edge_litert")  # the rewrite is the fixer's (schema object API)
    from deeplab_nnapi.export.pipeline import fit_large_pools
    from deeplab_nnapi.export.verify import check_delegation

    data = (MODELS_DIR / "deeplabv3_mnv2_pascal_513_os8_quant.tflite").read_bytes()
    assert check_delegation(data, delegate="stock")[1] > 1
    fixed, rewrites = fit_large_pools(data, delegate="stock")
    assert [(r["op_type"], r["replacement"].split()[0]) for r in rewrites] == [("AVERAGE_POOL_2D", "MEAN")]
    _, partitions, refusals = check_delegation(fixed, delegate="stock")
    assert partitions == 1 and not refusals
    assert fit_large_pools(data) == (data, [])  # the patched delegate takes 65x65: nothing to do
