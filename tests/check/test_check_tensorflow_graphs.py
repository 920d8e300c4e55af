"""Rules the reference models do not exercise, on small graphs converted with TensorFlow in the test."""

from __future__ import annotations

import pytest
from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model
from deeplab_nnapi.nnapi.tflite_model import load_model

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 8], tf.float32)])
    def graph(x):
        pooled = tf.nn.avg_pool2d(x, 20, 1, "VALID")  # float AVERAGE_POOL_2D, area 400 > 256
        hswish = x * tf.nn.relu6(x + 3.0) / 6.0  # HARD_SWISH
        mean = tf.reduce_mean(hswish, axis=[1, 2], keepdims=True)  # MEAN
        probs = tf.nn.softmax(tf.reshape(mean, [1, 8]))  # RESHAPE, SOFTMAX
        w = tf.constant(0.1, shape=[3, 3, 4, 8])
        up = tf.nn.conv2d_transpose(x, w, output_shape=[1, 64, 64, 4], strides=2, padding="SAME")
        labels64 = tf.argmax(up, axis=3)  # ARG_MAX, int64 output (TF's default)
        labels32 = tf.argmax(x, axis=3, output_type=tf.int32)  # ARG_MAX, int32 output
        return pooled, probs, labels64, labels32

    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph.get_concrete_function()], graph)
    path = tmp_path_factory.mktemp("tf") / "float_ops.tflite"
    path.write_bytes(converter.convert())
    return path


def ops_by_type(path):
    return {op.op_type: op.index for op in load_model(path).operators}


def test_converted_graph_has_the_ops(float_model):
    ops = ops_by_type(float_model)
    assert {
        "AVERAGE_POOL_2D",
        "HARD_SWISH",
        "MEAN",
        "RESHAPE",
        "SOFTMAX",
        "TRANSPOSE_CONV",
        "ARG_MAX",
    } <= set(ops)


def test_newest_release_api29(float_model):
    plan = check_model(float_model, DelegateOptions(android_api=29, delegate="stock"))
    m = load_model(float_model)
    argmax = [op for op in m.operators if op.op_type == "ARG_MAX"]
    int64 = [op.index for op in argmax if op.options["output_type"] == "INT64"]
    int32 = [op.index for op in argmax if op.options["output_type"] == "INT32"]
    assert len(int64) == 1 and len(int32) == 1
    # Only the int64 ArgMax is refused; the float pool is not checked for size (quantized-only check).
    assert [(r.op, r.reason) for r in plan.refused] == [(int64[0], "NNAPI only supports int32 output.")]
    delegated = [op for n in plan.delegate_nodes for op in n.ops]
    assert int32[0] in delegated and len(delegated) == len(m.operators) - 1


def test_tf21_checks_float_pools_too(float_model):
    plan = check_model(float_model, DelegateOptions(android_api=29, delegate="stock", tf_version="2.1"))
    pool = ops_by_type(float_model)["AVERAGE_POOL_2D"]
    refused = {r.op: r.reason for r in plan.refused}
    assert refused[pool].startswith("Large filter window would overflow on the reference CPU path")
    # our patch removes it in every release
    patched = check_model(float_model, DelegateOptions(android_api=29, delegate="patched", tf_version="2.1"))
    assert pool not in {r.op for r in patched.refused}


def test_api28_refuses_nnapi12_ops(float_model):
    plan = check_model(float_model, DelegateOptions(android_api=28, delegate="patched"))
    ops = ops_by_type(float_model)
    refused = {r.op: r.reason for r in plan.refused}
    assert refused[ops["TRANSPOSE_CONV"]] == "Android sdk version less than 29"
    assert "Android sdk version less than 29" in refused[ops["ARG_MAX"]]
    for name in ("HARD_SWISH", "MEAN", "RESHAPE", "SOFTMAX", "AVERAGE_POOL_2D"):
        assert ops[name] not in refused, name
    api27 = {r.op: r.reason for r in check_model(float_model, DelegateOptions(android_api=27)).refused}
    assert api27[ops["MEAN"]].startswith("Android sdk version less than 28")
