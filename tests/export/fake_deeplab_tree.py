"""A small tensorflow/models-shaped tree the tests write: TF 1.x-style DeepLab code for the TF 2.x builder.

``research/deeplab/{common,model,export_model}.py`` and ``research/slim/nets/tiny_deeplab.py`` use what the
real code uses: ``import tensorflow as tf`` expecting TF 1.x (``tf.placeholder``, ``tf.app.flags``,
``tf.variable_scope``, ``tf.image.resize_bilinear``), ``tensorflow.contrib.{slim, framework, layers,
training, quantize}``, ``from tensorflow.python.tools import freeze_graph``, ``np.int`` / ``np.float``,
``contrib.training.HParams``. The network has MobileNetV2's and DeepLab's scopes and layer kinds (conv +
batch norm + Relu6, an inverted residual block with an atrous depthwise conv, image pooling, ASPP 1x1,
concat, projection, logits with biases), so contrib.quantize would name its ranges as listed in
:data:`QUANT_POINTS`. It is not the DeepLab code (which cannot be committed).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

CROP = 65
OUTPUT_STRIDE = 8
NUM_CLASSES = 5

COMMON = '''
"""Stand-in for deeplab/common.py: flags and ModelOptions."""
import collections
import tensorflow as tf

flags = tf.app.flags
flags.DEFINE_string('model_variant', 'mobilenet_v2', 'DeepLab model variant.')
flags.DEFINE_multi_float('image_pyramid', None, 'Input scales for multi-scale feature extraction.')
FLAGS = flags.FLAGS

OUTPUT_TYPE = 'semantic'


class ModelOptions(collections.namedtuple(
        'ModelOptions', ['outputs_to_num_classes', 'crop_size', 'atrous_rates', 'output_stride'])):
  def __new__(cls, outputs_to_num_classes, crop_size=None, atrous_rates=None, output_stride=8):
    return super(ModelOptions, cls).__new__(cls, outputs_to_num_classes, crop_size, atrous_rates,
                                            output_stride)
'''

MODEL = '''
"""Stand-in for deeplab/model.py: predict_labels() with the patched resize and int32 argmax."""
import tensorflow as tf
from tensorflow.contrib import slim as contrib_slim
from deeplab import common
from nets import tiny_deeplab

slim = contrib_slim


def predict_labels(images, model_options, image_pyramid=None):
  logits = tiny_deeplab.logits(
      (2.0 / 255.0) * images - 1.0,
      model_options.outputs_to_num_classes[common.OUTPUT_TYPE],
      output_stride=model_options.output_stride)
  logits = tf.image.resize_bilinear(logits, tf.shape(images)[1:3], align_corners=False)
  return {common.OUTPUT_TYPE: tf.argmax(logits, 3, output_type=tf.int32),
          common.OUTPUT_TYPE + '_prob': tf.nn.softmax(logits)}
'''

EXPORT_MODEL = '''
"""Stand-in for deeplab/export_model.py: its flags and _create_input_tensors()."""
import tensorflow as tf
from tensorflow.contrib import quantize as contrib_quantize
from tensorflow.python.tools import freeze_graph
from deeplab import common
from deeplab import model

flags = tf.app.flags
FLAGS = flags.FLAGS
flags.DEFINE_string('checkpoint_path', None, 'Checkpoint path')
flags.DEFINE_string('export_path', None, 'Path to output Tensorflow frozen graph.')
flags.DEFINE_integer('num_classes', 21, 'Number of classes.')
flags.DEFINE_multi_integer('crop_size', [513, 513], 'Crop size [height, width].')
flags.DEFINE_multi_integer('atrous_rates', None, 'Atrous rates for ASPP.')
flags.DEFINE_integer('output_stride', 8, 'The ratio of input to output spatial resolution.')
flags.DEFINE_multi_float('inference_scales', [1.0], 'The scales to resize images for inference.')
flags.DEFINE_integer('quantize_delay_step', -1, 'Steps to start quantized training.')


def _create_input_tensors():
  input_image = tf.placeholder(tf.uint8, [1, None, None, 3], name='ImageTensor')
  image = tf.image.resize_bilinear(tf.cast(input_image, tf.float32), FLAGS.crop_size,
                                   align_corners=False)
  return image, tf.shape(input_image)[1:3], tf.shape(image)[1:3]


def main(unused_argv):
  image, _, _ = _create_input_tensors()
  model.predict_labels(image, common.ModelOptions({common.OUTPUT_TYPE: FLAGS.num_classes}))
  if FLAGS.quantize_delay_step >= 0:
    contrib_quantize.create_eval_graph()
  freeze_graph.freeze_graph_with_def_protos
'''

TINY_DEEPLAB = '''
"""A tiny MobileNetV2 + DeepLab head in TF 1.x style, with the upstream scope names."""
import numpy as np
import tensorflow as tf
from tensorflow.contrib import framework as contrib_framework
from tensorflow.contrib import layers as contrib_layers
from tensorflow.contrib import slim as contrib_slim
from tensorflow.contrib import training as contrib_training

slim = contrib_slim


def hparams():
  return contrib_training.HParams(depth=np.int(8.0), expansion=np.float(2), bn_epsilon=1e-3)


def _inverted_residual(net, depth, stride, rate, hp, scope):
  with tf.variable_scope(scope):
    inputs = tf.identity(net, name='input')
    in_depth = inputs.get_shape().as_list()[3]
    net = slim.conv2d(inputs, int(in_depth * hp.expansion), 1, scope='expand')
    net = slim.separable_conv2d(net, None, 3, depth_multiplier=1, stride=stride, rate=rate,
                                scope='depthwise')
    net = slim.conv2d(net, depth, 1, activation_fn=tf.identity, scope='project')
    if stride == 1 and depth == in_depth:
      net += inputs
    return tf.identity(net, name='output')


def features(images, output_stride=8):
  hp = hparams()
  with contrib_framework.arg_scope(
      [slim.conv2d, slim.separable_conv2d], normalizer_fn=slim.batch_norm, activation_fn=tf.nn.relu6,
      weights_regularizer=contrib_layers.l2_regularizer(4e-5)), \\
       contrib_framework.arg_scope([slim.batch_norm], is_training=False, scale=True,
                                   epsilon=hp.bn_epsilon):
    with tf.variable_scope('MobilenetV2'):
      with tf.name_scope('MobilenetV2'):
        net = tf.identity(images, name='input')
      net = slim.conv2d(net, hp.depth, 3, stride=2, scope='Conv')
      with tf.variable_scope('expanded_conv'):
        net = slim.separable_conv2d(net, None, 3, depth_multiplier=1, scope='depthwise')
        net = slim.conv2d(net, hp.depth, 1, activation_fn=tf.identity, scope='project')
        net = tf.identity(net, name='output')
      net = _inverted_residual(net, 16, 2, 1, hp, 'expanded_conv_1')
      assert output_stride == 8, 'the tiny network has output stride 8 only'
      net = _inverted_residual(net, 16, 2, 1, hp, 'expanded_conv_2')
      net = _inverted_residual(net, 16, 1, 2, hp, 'expanded_conv_3')
  return net


def logits(images, num_classes, output_stride=8):
  net = features(images, output_stride)
  size = net.get_shape().as_list()[1:3]
  with contrib_framework.arg_scope(
      [slim.conv2d], normalizer_fn=slim.batch_norm, activation_fn=tf.nn.relu,
      weights_initializer=contrib_layers.xavier_initializer()), \\
       contrib_framework.arg_scope([slim.batch_norm], is_training=False, scale=True, epsilon=1e-5):
    pool = slim.avg_pool2d(net, size, stride=1, padding='VALID')
    pool = slim.conv2d(pool, 16, 1, scope='image_pooling')
    pool = tf.image.resize_bilinear(pool, size, align_corners=False)
    aspp0 = slim.conv2d(net, 16, 1, scope='aspp0')
    net = tf.concat([pool, aspp0], 3)
    net = slim.conv2d(net, 16, 1, scope='concat_projection')
  with tf.variable_scope('logits'):
    return slim.conv2d(net, num_classes, 1, activation_fn=None, normalizer_fn=None, scope='semantic')
'''

# The tensors contrib.quantize quantizes in this network, by the names its variables carry (read from
# TF 1.x's contrib/quantize: <layer scope>/weights_quant, <layer scope>/act_quant, and
# <scope of the residual add>/post_activation_bypass_quant).
_LAYERS = ["MobilenetV2/Conv", "MobilenetV2/expanded_conv/depthwise", "MobilenetV2/expanded_conv/project"]
for _block in ("expanded_conv_1", "expanded_conv_2", "expanded_conv_3"):
    _LAYERS += [f"MobilenetV2/{_block}/{part}" for part in ("expand", "depthwise", "project")]
_LAYERS += ["image_pooling", "aspp0", "concat_projection", "logits/semantic"]
QUANT_POINTS = sorted([f"{layer}/{kind}" for layer in _LAYERS for kind in ("weights_quant", "act_quant")]
                      + ["MobilenetV2/expanded_conv_3/post_activation_bypass_quant"])


def write_tree(root: Path) -> Path:
    """Write the tree under ``root`` (``root/research/...``); return ``root``."""
    files = {
        "research/deeplab/__init__.py": "",
        "research/deeplab/common.py": COMMON,
        "research/deeplab/model.py": MODEL,
        "research/deeplab/export_model.py": EXPORT_MODEL,
        "research/slim/nets/__init__.py": "",
        "research/slim/nets/tiny_deeplab.py": TINY_DEEPLAB,
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def variant_table(url: str, sha256: str, member_dir: str = "ckpt") -> str:
    """A variant table with one qat and one dummy variant of the tiny network."""
    flags = (f'"--model_variant=mobilenet_v2", "--num_classes={NUM_CLASSES}", "--crop_size={CROP}", '
             f'"--crop_size={CROP}", "--output_stride={OUTPUT_STRIDE}"')
    return textwrap.dedent(f'''
        schema = 1
        [converter]
        input_array = "MobilenetV2/MobilenetV2/input"
        output_array = "ArgMax"

        [checkpoint.tiny_8bit]
        url = "{url}"
        sha256 = "{sha256}"
        member_dir = "{member_dir}"
        quantization_aware = true

        [[variant]]
        name = "tiny_qat"
        dataset = "test"
        num_classes = {NUM_CLASSES}
        crop_size = {CROP}
        output_stride = {OUTPUT_STRIDE}
        quantization = "qat"
        checkpoint = "tiny_8bit"
        export_flags = [{flags}, "--quantize_delay_step=0"]

        [[variant]]
        name = "tiny_dummy"
        dataset = "test"
        num_classes = {NUM_CLASSES}
        crop_size = {CROP}
        output_stride = {OUTPUT_STRIDE}
        quantization = "dummy"
        checkpoint = "tiny_8bit"
        export_flags = [{flags}]
    ''')
