"""The rule table and its evaluation, on one-op models built in memory (no TensorFlow needed)."""

from __future__ import annotations

import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import DelegateOptions, plan_model
from deeplab_nnapi.nnapi.rules import Context, is_accelerator_specified, load_rules, validate
from deeplab_nnapi.nnapi.tflite_model import OperatorInfo, TensorInfo, TFLiteModel

RULES = load_rules()
ISSUE_OPS = [
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "ADD",
    "MUL",
    "CONCATENATION",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "ARG_MAX",
    "ARG_MIN",
    "MEAN",
    "RESHAPE",
    "SOFTMAX",
    "LOGISTIC",
    "TANH",
    "RELU",
    "RELU6",
    "RELU_N1_TO_1",
    "HARD_SWISH",
    "PAD",
    "QUANTIZE",
    "DEQUANTIZE",
    "FULLY_CONNECTED",
    "TRANSPOSE_CONV",
    "SPACE_TO_DEPTH",
    "DEPTH_TO_SPACE",
    "STRIDED_SLICE",
]


def t(i, ttype="UINT8", shape=(1, 8, 8, 4), const=False, scale=0.5, zp=128, name=None):
    return TensorInfo(i, name or f"t{i}", ttype, tuple(shape), i + 1 if const else 0, const, scale, zp, 1)


def one_op(op_type, tensors, inputs, outputs, options=None, version=1):
    op = OperatorInfo(0, op_type, version, tuple(inputs), tuple(outputs), dict(options or {}))
    return TFLiteModel(list(tensors), [op], (inputs[0],), tuple(outputs))


def reasons(model, api=29, tf=None, accel=False, patched=False):
    rel = RULES.release(tf)
    ctx = Context(api, rel, accel, frozenset({"pool-area"}) if patched else frozenset())
    return validate(RULES, model, model.operators[0], ctx)


def test_issue_ops_are_all_in_the_table():
    missing = [op for op in ISSUE_OPS if op not in RULES.ops]
    assert missing == []


def test_unknown_op_is_refused_with_the_delegates_message():
    m = one_op("SQUARED_DIFFERENCE", [t(0), t(1), t(2)], [0, 1], [2])
    (reason,) = reasons(m)
    assert reason.startswith("Unsupported operation type.")
    m = one_op("CUSTOM", [t(0), t(1)], [0], [1])
    assert "custom op" in reasons(m)[0]


def test_not_modelled_op_is_refused_and_says_so():
    m = one_op("LSTM", [t(0), t(1)], [0], [1])
    assert "not modelled" in reasons(m)[0]


def test_argmax_needs_api29_and_int32_output():
    ts = [t(0, shape=(1, 4, 4, 3)), t(1, "INT32", (), const=True), t(2, "INT32", (1, 4, 4))]
    ok = one_op("ARG_MAX", ts, [0, 1], [2], {"output_type": "INT32"})
    assert reasons(ok, 29) == []
    assert reasons(ok, 28) == ["Android sdk version less than 29"]
    bad = one_op("ARG_MAX", ts, [0, 1], [2], {"output_type": "INT64"})
    assert reasons(bad, 29) == ["NNAPI only supports int32 output."]
    # int64 axis: only when constant
    ts64 = [ts[0], t(1, "INT64", (), const=False), ts[2]]
    m = one_op("ARG_MAX", ts64, [0, 1], [2], {"output_type": "INT32"})
    assert "NNAPI only supports axis as int32" in reasons(m)[0]


def resize(align=False, half=False, const_size=True, in_type="UINT8", out_shape=(1, 16, 16, 4)):
    ts = [t(0, in_type), t(1, "INT32", (2,), const=const_size), t(2, in_type, out_shape)]
    return one_op("RESIZE_BILINEAR", ts, [0, 1], [2], {"align_corners": align, "half_pixel_centers": half})


def test_resize_bilinear_rules_per_api_and_release():
    assert reasons(resize()) == []
    assert reasons(resize(align=True), 29) == ["NNAPI does not support align_corners == true."]
    assert reasons(resize(align=True), 30) == []
    assert reasons(resize(half=True), 29) == ["NNAPI does not support half_pixel_centers == true."]
    # TF 2.1/2.2 refuse align_corners at every API level
    assert reasons(resize(align=True), 30, tf="2.2") == ["NNAPI does not support align_corners == true."]
    assert reasons(resize(const_size=False)) == ["The size input tensor must be constant."]
    # NNAPI 1.0/1.1: float only and square output
    assert reasons(resize(out_shape=(1, 16, 8, 4)), 28) == [
        "Require width == height due to driver differences in NNAPI < 1.2",
        "NNAPI 1.0 & 1.1 only supports float input.",
    ]
    assert reasons(resize(in_type="FLOAT32"), 28) == []


def pool(fw, ttype="UINT8"):
    ts = [t(0, ttype, (1, fw, fw, 4)), t(1, ttype, (1, 1, 1, 4))]
    return one_op("AVERAGE_POOL_2D", ts, [0], [1], {"filter_width": fw, "filter_height": fw})


def test_pool_area_check_shapes_per_release():
    assert reasons(pool(16)) == []  # 256 is allowed
    assert "Large filter window" in reasons(pool(17))[0]
    assert reasons(pool(17), accel=True) == []
    assert reasons(pool(65), patched=True) == []
    # shape c (newest): float pools are not checked; shape b (TF 2.1/2.2) checks any type
    assert reasons(pool(65, "FLOAT32")) == []
    assert "Large filter window" in reasons(pool(65, "FLOAT32"), tf="2.1")[0]
    assert "TF 2.0 op mapping" in reasons(pool(65, "FLOAT32"), tf="2.0")[0]


def test_is_accelerator_specified_semantics():
    new, old = RULES.release(None), RULES.release("2.0")
    assert is_accelerator_specified(new, 29, "google-edgetpu", False)
    assert not is_accelerator_specified(new, 29, "nnapi-reference", False)
    assert not is_accelerator_specified(new, 29, "nnapi-reference", True)
    assert is_accelerator_specified(new, 29, None, True)
    assert not is_accelerator_specified(new, 28, None, True)  # disallow_nnapi_cpu needs NNAPI 1.2
    assert not is_accelerator_specified(old, 29, None, True)
    assert is_accelerator_specified(old, 29, "x", False)


def test_conv_rules():
    ts = [t(0), t(1, shape=(4, 1, 1, 4), const=True), t(2, "INT32", (4,), const=True), t(3)]
    conv = one_op("CONV_2D", ts, [0, 1, 2], [3], {"dilation_wfactor": 2, "dilation_hfactor": 2})
    assert reasons(conv, 29) == []
    assert "NNAPI supports dilated Conv2D since NNAPI 1.2." in reasons(conv, 28)
    no_bias = one_op("CONV_2D", ts, [0, 1], [3], {"dilation_wfactor": 1, "dilation_hfactor": 1})
    assert reasons(no_bias) == ["Conv2D with omitted bias not supported"]
    # ExpectMaxOpVersion(version, 5) (TF 2.9.2 and LiteRT, read by the differential test)
    assert reasons(one_op("CONV_2D", ts, [0, 1, 2], [3], {}, version=5)) == []
    assert reasons(one_op("CONV_2D", ts, [0, 1, 2], [3], {}, version=6)) == ["OP Version higher than 5"]


def test_mean_rules_follow_the_real_delegate():
    """No same-quantization check (neither TF 2.9.2 nor LiteRT has one: the differential test found the old
    rule refusing what the delegate takes); inputs of rank > 4 are refused by newer delegates only."""
    ts = [t(0), t(1, "INT32", (2,), const=True), t(2, shape=(1, 1, 1, 4), scale=0.25)]
    m = one_op("MEAN", ts, [0, 1], [2], {"keep_dims": True})
    assert reasons(m) == []
    assert reasons(m, 27) == ["Android sdk version less than 28", "Expected Float32 input"]
    rank5 = [t(0, shape=(1, 2, 4, 4, 4)), t(1, "INT32", (2,), const=True), t(2, shape=(1, 2, 1, 1, 4))]
    m5 = one_op("MEAN", rank5, [0, 1], [2], {"keep_dims": True})
    assert reasons(m5) == ["NNAPI does not support mean of a tensor with rank > 4"]
    assert reasons(m5, tf="2.9") == []


def test_transpose_conv_needs_constant_shape_and_filter():
    ts = [t(0, "INT32", (4,), const=False), t(1, shape=(4, 3, 3, 4), const=True), t(2), t(3)]
    m = one_op("TRANSPOSE_CONV", ts, [0, 1, 2], [3])
    assert reasons(m) == ["Dynamically-sized tensors not supported."]


def test_release_selection_errors():
    assert RULES.release("2.15.1").version == "2.15"
    with pytest.raises(UsageError, match="no rules for that release"):
        RULES.release("1.2")
    with pytest.raises(UsageError, match="not a version"):
        RULES.release("two")


def test_plan_options_are_validated():
    m = pool(4)
    with pytest.raises(UsageError):
        plan_model(m, DelegateOptions(android_api=26))
    with pytest.raises(UsageError):
        plan_model(m, DelegateOptions(delegate="mine"))


def test_feature_level_6_ops_need_targeted_devices_on_api_33():
    """DoPrepare validates against the devices' feature level only when it targets devices (an accelerator
    named, or the CPU disallowed); else against the API level: PACK of uint8 needs feature level 6."""
    from deeplab_nnapi.nnapi.delegation import DelegateOptions, plan_model

    ts = [t(0, shape=(1, 4, 4, 4)), t(1, shape=(1, 4, 4, 4)), t(2, shape=(2, 1, 4, 4, 4))]
    pack = one_op("PACK", ts, [0, 1], [2], {"values_count": 2, "axis": 0})
    assert RULES.runtime_feature_level(33) == 1000006 and RULES.runtime_feature_level(32) == 31
    named = plan_model(pack, DelegateOptions(android_api=33, accelerator="npu"))
    plain = plan_model(pack, DelegateOptions(android_api=33))
    assert named.single_partition and not named.refused
    expected = "Input type not in expected list kTfLiteFloat32, kTfLiteInt8"
    assert [r.reason for r in plain.refused] == [expected]
    nocpu = plan_model(pack, DelegateOptions(android_api=33, disallow_nnapi_cpu=True))
    assert nocpu.single_partition
    # Below API 29 no device is targeted: the API level decides.
    assert plan_model(pack, DelegateOptions(android_api=28, accelerator="npu")).refused


def test_a_conv_whose_bias_is_tensor_minus_one_crashes_the_delegate():
    from deeplab_nnapi.nnapi.delegation import DelegateOptions, plan_model

    ts = [t(0), t(1, shape=(4, 1, 1, 4), const=True), t(2)]
    conv = one_op("CONV_2D", ts, [0, 1, -1], [2], {"dilation_wfactor": 1, "dilation_hfactor": 1})
    plan = plan_model(conv, DelegateOptions(android_api=29))
    assert plan.status == "crash" and not plan.single_partition
    assert "crashes" in plan.notes[-1] and plan.to_json()["status"] == "crash"
    # Only delegated ops are mapped: no crash when the op is refused (int8 input before API 29).
    int8 = [t(0, "INT8"), t(1, "INT8", shape=(4, 1, 1, 4), const=True), t(2, "INT8")]
    refused = plan_model(one_op("CONV_2D", int8, [0, 1, -1], [2], {}), DelegateOptions(android_api=28))
    assert refused.status == "ok" and refused.refused
