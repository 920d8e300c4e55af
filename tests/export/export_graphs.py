"""Small DeepLab-shaped TF1-style graphs for the export tests and the benchmark.

The layout mirrors what ``deeplab/export_model.py`` freezes for ``--model_variant=mobilenet_v2``:
``ImageTensor`` (uint8) -> cast -> ``sub_7`` (x * 2/255 - 1) -> Identity ``MobilenetV2/MobilenetV2/input``
-> a MobileNet-like body (conv / depthwise conv with relu6) -> an image-pooling branch (large average pool,
1x1 conv, bilinear resize back) and an ASPP 1x1 branch -> concat -> projection 1x1 -> logits -> bilinear
upsample to the input size -> ``ArgMax``. Weights are random (seeded).

``upstream=True`` builds what unpatched DeepLab code produces (every bilinear resize with
``align_corners=True``, int64 ArgMax); ``upstream=False`` the patched shape (``align_corners=False``, int32).
``qat=True`` inserts FakeQuantWithMinMaxVars nodes with fixed ranges after every activation, as a
quantization-aware checkpoint's eval graph carries them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INPUT_ARRAY = "MobilenetV2/MobilenetV2/input"
OUTPUT_ARRAY = "ArgMax"
# The size and class count the export tests use (here, not in conftest.py: a `from conftest import`
# picks whichever tests/*/conftest.py was imported first when the whole suite runs).
SIZE = 129  # 129 -> feature map 17x17 at output stride 8: pool filter 17x17 = 289 > 256
NUM_CLASSES = 5


@dataclass(frozen=True)
class GraphSpec:
    size: int = 129  # input H = W
    num_classes: int = 5
    upstream: bool = False
    qat: bool = False
    seed: int = 1
    static_shape: bool = True  # False: no set_shape, so the final resize size stays a graph computation

    @property
    def pool(self) -> int:
        # body has output stride 8: 129 -> 17 (filter 17x17 = 289 > 256)
        return (self.size - 1) // 8 + 1


def build_frozen_graph(spec: GraphSpec) -> bytes:
    """Build and freeze the graph; return the serialized GraphDef."""
    import tensorflow as tf

    v1 = tf.compat.v1
    rng = np.random.default_rng(spec.seed)
    g = tf.Graph()
    with g.as_default():
        # export_model.py: any image size in, padded to the crop size by input_preprocess, which then
        # states the static shape (set_shape) that makes tf.shape(images) below a constant
        image = v1.placeholder(tf.uint8, [1, None, None, 3], name="ImageTensor")
        x = tf.cast(tf.squeeze(image, 0), tf.float32)
        h, w = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.pad(x, [[0, tf.maximum(spec.size - h, 0)], [0, tf.maximum(spec.size - w, 0)], [0, 0]],
                   constant_values=127.5)
        if spec.static_shape:
            x.set_shape([spec.size, spec.size, 3])
        images = tf.expand_dims(x, 0)
        x = tf.subtract(images * (2.0 / 255.0), 1.0, name="sub_7")
        x = tf.identity(x, name=INPUT_ARRAY)
        x.set_shape([1, spec.size, spec.size, 3])  # the model code knows the crop size either way

        def fq(t, lo=0.0, hi=6.0):
            if not spec.qat:
                return t
            return tf.quantization.fake_quant_with_min_max_vars(
                t, v1.constant(lo), v1.constant(hi), num_bits=8, narrow_range=False)

        def weights(shape, name, centred=False):
            depthwise = shape[-1] == 1
            fan_in = int(np.prod(shape[:2])) if depthwise else int(np.prod(shape[:-1]))
            w = rng.normal(0.0, 1.5 / np.sqrt(fan_in), size=shape).astype(np.float32)
            if centred:  # zero-sum over the inputs: the label then follows the image, not a constant
                w -= w.mean(axis=(0, 1, 2), keepdims=True)
            var = tf.constant(w, name=name)
            if spec.qat:
                lo, hi = float(w.min()), float(w.max())
                var = tf.quantization.fake_quant_with_min_max_vars(
                    var, v1.constant(lo), v1.constant(hi), num_bits=8, narrow_range=True)
            return var

        def bias(n, name):
            return tf.constant(rng.normal(0.0, 0.02, size=(n,)).astype(np.float32), name=name)

        def norm(y, n, name):
            if spec.qat:  # a QAT eval graph has the batch norm folded into weights and bias
                return tf.nn.bias_add(y, bias(n, name + "/biases"), name=name + "/BiasAdd")
            # a float checkpoint's inference graph keeps a fused batch norm after the conv
            scale = tf.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))
            offset = bias(n, name + "/beta")
            mean = tf.constant(rng.normal(0.0, 0.1, n).astype(np.float32))
            var = tf.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))
            y, _, _ = v1.nn.fused_batch_norm(y, scale, offset, mean, var, is_training=False,
                                             name=name + "/BatchNorm/FusedBatchNormV3")
            return y

        def conv(t, cout, k, stride, name, act=True, rate=1):
            cin = int(t.shape[-1])
            w = weights([k, k, cin, cout], name + "/weights", centred=not act)
            y = tf.nn.conv2d(t, w, [1, stride, stride, 1], "SAME", dilations=[1, rate, rate, 1])
            y = norm(y, cout, name)
            if act:
                y = tf.nn.relu6(y, name=name + "/Relu6")
                return fq(y)
            return fq(y, -8.0, 8.0)

        def dwconv(t, stride, name, rate=1):
            cin = int(t.shape[-1])
            w = weights([3, 3, cin, 1], name + "/depthwise_weights")
            if rate > 1:  # TF 1.x builds atrous depthwise convs as SpaceToBatchND / conv / BatchToSpaceND
                y = tf.nn.with_space_to_batch(
                    t, [rate, rate], "SAME", filter_shape=[3, 3],
                    op=lambda inp, num_spatial_dims, padding: tf.nn.depthwise_conv2d(
                        inp, w, [1, 1, 1, 1], padding))
            else:
                y = tf.nn.depthwise_conv2d(t, w, [1, stride, stride, 1], "SAME")
            y = norm(y, cin, name)
            return fq(tf.nn.relu6(y, name=name + "/Relu6"))

        x = conv(x, 8, 3, 2, "MobilenetV2/Conv")
        x = dwconv(x, 1, "MobilenetV2/expanded_conv/depthwise")
        x = conv(x, 16, 1, 1, "MobilenetV2/expanded_conv_1/expand")
        x = dwconv(x, 2, "MobilenetV2/expanded_conv_1/depthwise")
        x = conv(x, 16, 1, 1, "MobilenetV2/expanded_conv_2/expand")
        x = dwconv(x, 2, "MobilenetV2/expanded_conv_2/depthwise")
        x = conv(x, 24, 1, 1, "MobilenetV2/expanded_conv_3/expand")
        x = dwconv(x, 1, "MobilenetV2/expanded_conv_3/depthwise", rate=2)  # output stride 8: atrous from here
        features = conv(x, 24, 1, 1, "MobilenetV2/expanded_conv_3/project")
        fh = int(features.shape[1])
        ac = spec.upstream

        # image pooling branch: average pool over the whole feature map, 1x1 conv, resize back
        pooled = tf.nn.avg_pool2d(features, [1, fh, fh, 1], [1, 1, 1, 1], "VALID", name="AvgPool2D/AvgPool")
        pooled = fq(pooled)
        pooled = conv(pooled, 16, 1, 1, "image_pooling")
        pooled = fq(v1.image.resize_bilinear(pooled, [fh, fh], align_corners=ac, name="ResizeBilinear"))
        aspp0 = conv(features, 16, 1, 1, "aspp0")
        cat = fq(tf.concat([pooled, aspp0], 3, name="concat"))
        proj = conv(cat, 16, 1, 1, "concat_projection")
        logits = conv(proj, spec.num_classes, 1, 1, "logits/semantic", act=False)
        logits = fq(v1.image.resize_bilinear(logits, [fh, fh], align_corners=ac, name="ResizeBilinear_1"),
                    -8.0, 8.0)
        up = fq(v1.image.resize_bilinear(logits, tf.shape(images)[1:3], align_corners=ac,
                                         name="ResizeBilinear_2"), -8.0, 8.0)
        tf.math.argmax(up, 3, output_type=tf.int64 if spec.upstream else tf.int32, name=OUTPUT_ARRAY)
    return g.as_graph_def().SerializeToString()
