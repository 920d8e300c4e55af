"""DeepLab-shaped Python files written by the tests (our own text, not upstream's): the same file names,
functions and kinds of calls that the rule in patches/models/rule.toml looks at, in the layouts upstream
went through, so the rule, the generator and the engine can be exercised without the real tree.

States (like upstream's history): ``legacy`` (direct resize calls in model.py, no core/utils.py),
``helper`` (a resize helper in core/utils.py), ``final`` (``helper`` plus a later one-line fix and the
probabilities resize), ``compat`` (``final`` after a ``tf.compat.v1`` migration, as forks did).
"""

from __future__ import annotations

from typing import Dict

UTILS = "research/deeplab/core/utils.py"
MODEL = "research/deeplab/model.py"
EXPORT = "research/deeplab/export_model.py"

_UTILS = '''\
"""Utilities (test stand-in)."""
import tensorflow as tf


def resize_bilinear(images, size, output_dtype=tf.float32):
  """Resizes images."""
  images = {tf}.image.resize_bilinear(images, size, align_corners=True)
  return tf.cast(images, dtype=output_dtype)


def scale_dimension(dim, scale):
  return int((float(dim) - 1.0) * scale + 1.0)
'''

_MODEL_LEGACY = '''\
"""Model (test stand-in, 2018 layout)."""
import tensorflow as tf


def predict_labels_multi_scale(images, model_options, eval_scales=(1.0,)):
  outputs = {{}}
  for scale in eval_scales:
    logits = _logits(images, model_options)
    logits = tf.image.resize_bilinear(
        logits, tf.shape(images)[1:3],
        align_corners=True)
    outputs[scale] = logits
  merged = tf.reduce_mean(tf.stack(list(outputs.values())), axis=0)
  return {{'semantic': tf.argmax(merged, 3)}}


def predict_labels(images, model_options):
  logits = _logits(images, model_options)
  logits = tf.image.resize_bilinear(
      logits, tf.shape(images)[1:3], align_corners=True)
  return {{'semantic': tf.argmax(logits, 3)}}


def _logits(images, model_options):
  feature = tf.identity(images)
  pooled = tf.reduce_mean(feature, [1, 2], keepdims=True)
  pooled = tf.image.resize_bilinear(pooled, [33, 33], align_corners=True)
  return tf.concat([feature, pooled], 3){extra}
'''

_MODEL = '''\
"""Model (test stand-in)."""
import tensorflow as tf

from deeplab.core import utils

_resize_bilinear = utils.resize_bilinear
PROB_SUFFIX = '_prob'


def predict_labels_multi_scale(images, model_options, eval_scales=(1.0,)):
  outputs_to_predictions = {{'semantic': []}}
  for scale in eval_scales:
    logits = _resize_bilinear(_logits(images, model_options), tf.shape(images)[1:3])
    outputs_to_predictions['semantic'].append(tf.expand_dims(tf.nn.softmax(logits), 4))
  for output in sorted(outputs_to_predictions):
    predictions = outputs_to_predictions[output]
    predictions = tf.reduce_mean(tf.concat(predictions, 4), axis=4)
    outputs_to_predictions[output] = tf.argmax(predictions, 3)
    {fixed} = tf.nn.softmax(predictions)
  return outputs_to_predictions


def predict_labels(images, model_options):
  logits = _logits(images, model_options)
  predictions = {{}}
  if model_options.prediction_with_upsampled_logits:
    logits = _resize_bilinear(logits, tf.shape(images)[1:3], logits.dtype)
    predictions['semantic'] = tf.argmax(logits, 3)
  else:
    argmax_results = tf.argmax(logits, 3)
    argmax_results = tf.image.resize_nearest_neighbor(
        tf.expand_dims(argmax_results, 3),
        tf.shape(images)[1:3],
        align_corners=True,
        name='resize_prediction')
    predictions['semantic'] = tf.squeeze(argmax_results, 3){prob}
  return predictions


def _logits(images, model_options):
  pooled = tf.reduce_mean(images, [1, 2], keepdims=True)
  pooled = _resize_bilinear(pooled, [33, 33], images.dtype)
  return tf.concat([images, pooled], 3){extra}
'''

_PROB = '''
    predictions['semantic' + PROB_SUFFIX] = {tf}.image.resize_bilinear(
        tf.nn.softmax(logits),
        tf.shape(images)[1:3],
        align_corners=True,
        name='resize_prob')'''

_EXPORT = '''\
"""Export (test stand-in)."""
import tensorflow as tf

from deeplab import model


def main(unused_argv):
  image = tf.placeholder(tf.uint8, [1, None, None, 3], name='ImageTensor')
  predictions = model.predict_labels(tf.cast(image, tf.float32), None)
  labels = tf.image.resize_images(
      tf.expand_dims(predictions['semantic'], 3), [513, 513],
      method=tf.image.ResizeMethod.NEAREST_NEIGHBOR, align_corners=True){probs}
  return labels
'''

_PROBS = '''
  probabilities = {tf}.image.resize_bilinear(
      predictions['semantic_prob'], [513, 513], align_corners=True,
      name='SemanticProbabilities')'''


def files(state: str, extra: str = "") -> Dict[str, str]:
    """The three files at a state; ``extra`` is appended to model.py's last function (a local edit)."""
    tf = "tf.compat.v1" if state == "compat" else "tf"
    if state == "legacy":
        return {MODEL: _MODEL_LEGACY.format(extra=extra), EXPORT: _EXPORT.format(probs="")}
    fixed = "predictions[output + PROB_SUFFIX]" if state == "helper" else \
        "outputs_to_predictions[output + PROB_SUFFIX]"
    prob = "" if state == "helper" else _PROB.format(tf=tf)
    return {
        UTILS: _UTILS.format(tf=tf),
        MODEL: _MODEL.format(fixed=fixed, prob=prob, extra=extra),
        EXPORT: _EXPORT.format(probs=_PROBS.format(tf=tf) if state != "helper" else ""),
    }
