"""A stand-in tensorflow/models tree the tests write: DeepLab v3 on a full MobileNetV2, in TF 1.x style.

The real DeepLab code cannot be committed and CI has no checkout, yet ``export_models --weights-from`` needs
a tree whose graph has the published models' layers. This one builds the same network as
``research/deeplab`` with ``nets/mobilenet/mobilenet_v2.py`` for ``--model_variant=mobilenet_v2`` (written
here from the layer list, not copied): MobileNetV2's 17 inverted-residual blocks under their scopes
(``MobilenetV2/Conv``, ``MobilenetV2/expanded_conv_N/{expand,depthwise,project}``, residual ``add``), slim's
conv + batch norm (epsilon 1e-3) + ReLU6, atrous depthwise convs once the output stride is reached (as
``mobilenet_base(output_stride=...)`` does), and DeepLab's head for MobileNetV2 (image pooling: average pool
over the feature map, ``image_pooling`` conv, bilinear resize back; ``aspp0``; concat; ``concat_projection``;
batch norm epsilon 1e-5 + ReLU; ``logits/semantic`` with biases), the logits resized to their own size and
then to the crop (align_corners=False, the patched form), ``ArgMax`` int32. Its flags are those of
``export_model.py``/``common.py`` that the variant table passes, so the table's variants build from it.

It is what CI reconstructs the published models through; the real tree is the opt-in ``realsource`` test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from fake_deeplab_tree import COMMON, EXPORT_MODEL

MODEL = '''
"""Stand-in for deeplab/model.py (patched): predict_labels() with DeepLab's resizes and an int32 argmax."""
import tensorflow as tf
from deeplab import common
from nets import mnv2_deeplab


def _scale(dim, scale):
  return int((float(dim) - 1.0) * scale + 1.0)


def predict_labels(images, model_options, image_pyramid=None):
  crop = model_options.crop_size
  stride = model_options.output_stride
  logits = mnv2_deeplab.logits((2.0 / 255.0) * images - 1.0, crop,
                               model_options.outputs_to_num_classes[common.OUTPUT_TYPE], stride)
  # multi_scale_logits: to the logits' size (a no-op resize the converter keeps), then to the crop
  logits = tf.image.resize_bilinear(logits, [_scale(crop[0], 1.0 / stride), _scale(crop[1], 1.0 / stride)],
                                    align_corners=False)
  logits = tf.image.resize_bilinear(logits, tf.shape(images)[1:3], align_corners=False)
  return {common.OUTPUT_TYPE: tf.argmax(logits, 3, output_type=tf.int32),
          common.OUTPUT_TYPE + '_prob': tf.nn.softmax(logits)}
'''

MNV2_DEEPLAB = '''
"""MobileNetV2 (depth multiplier 1) and DeepLab v3's head in TF 1.x style, with the upstream scope names."""
import tensorflow as tf
from tensorflow.contrib import framework as contrib_framework
from tensorflow.contrib import slim as contrib_slim

slim = contrib_slim

# (expansion, output channels, stride) of expanded_conv_1 .. expanded_conv_16
BLOCKS = [(6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2), (6, 64, 1), (6, 64, 1),
          (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2), (6, 160, 1), (6, 160, 1),
          (6, 320, 1)]


def _block(net, expansion, depth, stride, rate, scope):
  with tf.variable_scope(scope):
    inputs = tf.identity(net, name='input')
    in_depth = inputs.get_shape().as_list()[3]
    if expansion > 1:
      net = slim.conv2d(inputs, in_depth * expansion, 1, scope='expand')
    net = slim.separable_conv2d(net, None, 3, depth_multiplier=1, stride=stride, rate=rate,
                                scope='depthwise')
    net = slim.conv2d(net, depth, 1, activation_fn=tf.identity, scope='project')
    if stride == 1 and depth == in_depth:
      net += inputs
    return tf.identity(net, name='output')


def features(images, output_stride):
  current, rate = 1, 1
  with contrib_framework.arg_scope(
      [slim.conv2d, slim.separable_conv2d], normalizer_fn=slim.batch_norm, activation_fn=tf.nn.relu6,
      padding='SAME'), \\
       contrib_framework.arg_scope([slim.batch_norm], is_training=False, center=True, scale=True,
                                   epsilon=1e-3):
    with tf.variable_scope('MobilenetV2'):
      with tf.name_scope('MobilenetV2'):
        net = tf.identity(images, name='input')
      net = slim.conv2d(net, 32, 3, stride=2, scope='Conv')
      current *= 2
      specs = [(1, 16, 1)] + BLOCKS
      for i, (expansion, depth, stride) in enumerate(specs):
        if current == output_stride:
          layer_stride, layer_rate = 1, rate
          rate *= stride
        else:
          layer_stride, layer_rate = stride, 1
          current *= stride
        net = _block(net, expansion, depth, layer_stride, layer_rate,
                     'expanded_conv' if i == 0 else 'expanded_conv_%d' % i)
  return net


def logits(images, crop, num_classes, output_stride):
  net = features(images, output_stride)
  size = net.get_shape().as_list()[1:3]
  with contrib_framework.arg_scope(
      [slim.conv2d], normalizer_fn=slim.batch_norm, activation_fn=tf.nn.relu, padding='SAME', stride=1), \\
       contrib_framework.arg_scope([slim.batch_norm], is_training=False, scale=True, epsilon=1e-5):
    pool = slim.avg_pool2d(net, size, 1, padding='VALID')
    pool = slim.conv2d(pool, 256, 1, scope='image_pooling')
    pool = tf.image.resize_bilinear(pool, size, align_corners=False)
    aspp0 = slim.conv2d(net, 256, 1, scope='aspp0')
    net = tf.concat([pool, aspp0], 3)
    net = slim.conv2d(net, 256, 1, scope='concat_projection')
  with tf.variable_scope('logits'):
    return slim.conv2d(net, num_classes, 1, activation_fn=None, normalizer_fn=None, scope='semantic')
'''


def write_tree(root: Path) -> Path:
    """Write the tree under ``root`` (``root/research/...``); return ``root``."""
    files = {
        "research/deeplab/__init__.py": "",
        "research/deeplab/common.py": COMMON,
        "research/deeplab/model.py": MODEL,
        "research/deeplab/export_model.py": EXPORT_MODEL,
        "research/slim/nets/__init__.py": "",
        "research/slim/nets/mnv2_deeplab.py": MNV2_DEEPLAB,
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root
