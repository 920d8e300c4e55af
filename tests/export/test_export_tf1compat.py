"""The TF1 compatibility layer on modules the tests write: what TF 1.x code sees, and that nothing leaks."""

from __future__ import annotations

import builtins
import sys
import textwrap

import numpy as np
import pytest
from deeplab_nnapi.export.tf1compat import CompatLayer, HParams, Tf1CompatError, load_table

pytestmark = pytest.mark.tensorflow

TF1_MODULE = '''
import numpy as np
import tensorflow as tf
import tensorflow.compat.v1 as tf_v1
from tensorflow.contrib import framework as contrib_framework
from tensorflow.contrib import layers as contrib_layers
from tensorflow.contrib import quantize as contrib_quantize
from tensorflow.contrib import slim as contrib_slim
from tensorflow.contrib import training as contrib_training
from tensorflow.contrib.layers.python.layers import layers as layers_lib
from tensorflow.contrib.layers.python.layers import utils as layers_utils
from tensorflow.contrib.slim.nets import resnet_utils
from tensorflow.python.tools import freeze_graph
from google3.learning.brain.contrib import slim as g3_slim
from google3.learning.brain.contrib import quantize as g3_quantize

slim = tf.contrib.slim
NP_INT = np.int
NP_FLOAT = np.float


def lazy_numpy_alias():
  import numpy
  return numpy.bool


def hparams():
  return contrib_training.HParams(depth=np.int(8.5), rate=2)
'''


@pytest.fixture
def tree(tmp_path):
    pkg = tmp_path / "research" / "tf1pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(textwrap.dedent(TF1_MODULE))
    (pkg / "broken.py").write_text("from tensorflow.contrib import no_such_thing\n")
    return tmp_path


@pytest.fixture(scope="module")
def real_tf():
    from deeplab_nnapi.native_logs import import_tensorflow

    return import_tensorflow()


def test_tf1_code_sees_tf_compat_v1_contrib_stand_ins_and_numpy_aliases(tree, real_tf):
    import tf_slim

    with CompatLayer(tree, packages={"tf1pkg": "research"}) as layer:
        mod = layer.import_module("tf1pkg.mod")
        assert mod.tf.placeholder is real_tf.compat.v1.placeholder
        assert mod.tf.app.flags is real_tf.compat.v1.app.flags
        assert mod.tf_v1 is real_tf.compat.v1
        assert mod.slim is mod.contrib_slim
        # the internal name two upstream states (2019-11-11) import contrib under
        assert mod.g3_slim is mod.contrib_slim and mod.g3_quantize is mod.contrib_quantize
        assert mod.contrib_slim.conv2d is tf_slim.conv2d
        assert mod.contrib_framework.arg_scope is tf_slim.arg_scope
        assert mod.contrib_framework.add_arg_scope is tf_slim.add_arg_scope
        assert mod.contrib_framework.get_variables_by_name is tf_slim.get_variables_by_name
        assert mod.contrib_layers.group_norm.__name__ == "group_norm"
        assert mod.contrib_layers.batch_norm is tf_slim.batch_norm
        assert mod.contrib_layers.l2_regularizer is tf_slim.l2_regularizer
        assert mod.layers_lib.conv2d is tf_slim.conv2d
        assert hasattr(mod.layers_utils, "collect_named_outputs")
        assert mod.resnet_utils.Block is tf_slim.nets.resnet_utils.Block
        assert hasattr(mod.freeze_graph, "freeze_graph_with_def_protos")
        assert mod.NP_INT is int and mod.NP_FLOAT is float
        assert mod.lazy_numpy_alias() is bool  # imports inside functions go through the hook too
        hp = mod.hparams()
        assert isinstance(hp, HParams) and hp.depth == 8 and hp.values() == {"depth": 8, "rate": 2}
        with pytest.raises(Tf1CompatError, match="contrib.quantize has no TF 2.x equivalent"):
            mod.contrib_quantize.create_eval_graph()


def test_contrib_module_without_stand_in_is_a_clear_import_error(tree, real_tf):
    with CompatLayer(tree, packages={"tf1pkg": "research"}) as layer:
        with pytest.raises(ImportError, match="no TF 2.x stand-in"):
            layer.import_module("tf1pkg.broken")


def test_nothing_leaks_into_the_rest_of_the_process(tree, real_tf):
    before_import = builtins.__import__
    before_meta = list(sys.meta_path)
    aliases = list(load_table().module_aliases)
    present = {a for a in aliases if a in sys.modules}
    with CompatLayer(tree, packages={"tf1pkg": "research"}) as layer:
        layer.import_module("tf1pkg.mod")
        assert "tf1pkg.mod" in sys.modules
        assert sys.modules["tensorflow"] is real_tf  # only the tree's modules see the view
        assert not hasattr(np, "int")
        assert builtins.__import__ is before_import
    assert not [m for m in sys.modules if m.split(".")[0] == "tf1pkg"]
    assert sys.meta_path == before_meta
    assert {a for a in aliases if a in sys.modules} == present
    assert not list(tree.rglob("__pycache__")), "no bytecode written into the models tree"
    with pytest.raises(ModuleNotFoundError):
        __import__("tf1pkg.mod")


def test_slim_layers_build_through_the_hook(tmp_path, real_tf):
    """conv + batch norm + atrous separable conv: tf_slim's batch_norm needs tf-keras' legacy layers."""
    import fake_deeplab_tree as fake

    root = fake.write_tree(tmp_path)
    with CompatLayer(root, packages={"nets": "research/slim"}) as layer:
        tiny = layer.import_module("nets.tiny_deeplab")
        g = real_tf.Graph()
        with g.as_default():
            logits = tiny.logits(real_tf.compat.v1.placeholder(real_tf.float32, [1, fake.CROP, fake.CROP, 3]),
                                 fake.NUM_CLASSES)
        ops = {op.type for op in g.get_operations()}
    assert logits.shape.as_list() == [1, 9, 9, fake.NUM_CLASSES]
    assert {"FusedBatchNormV3", "DepthwiseConv2dNative", "SpaceToBatchND", "AvgPool", "ConcatV2"} <= ops
    assert logits.op.name == "logits/semantic/BiasAdd"


def test_the_table_maps_what_deeplab_and_slim_import():
    table = load_table()
    for name in ("slim", "framework", "layers", "training", "quantize", "slim.nets",
                 "layers.python.layers.layers", "layers.python.layers.utils"):
        assert f"tensorflow.contrib.{name}" in table.contrib, name
    assert table.contrib["tensorflow.contrib.quantize"].missing
    assert table.packages == {"deeplab": "research", "nets": "research/slim"}
    assert table.environment["TF_USE_LEGACY_KERAS"] == "1"
    assert {"int", "float", "bool", "object"} <= set(table.numpy_aliases)
