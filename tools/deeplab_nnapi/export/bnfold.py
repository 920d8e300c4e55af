"""Fold inference batch norms into the layer before them, as TF 1.x's contrib.quantize did for an eval graph.

``layer -> [BatchToSpaceND] -> FusedBatchNorm*`` with constant parameters becomes
``layer(<scope>/mul_fold) -> [BatchToSpaceND] -> BiasAdd <scope>/add_fold`` (``contrib/quantize/python/
fold_batch_norms.py``): the QAT ranges of a checkpoint are ranges of the *folded* weights, so the folding
must happen before they are put in (:mod:`.qat`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deeplab_nnapi.export.graphdef import Graph, base, const_node, context, join, prune
from deeplab_nnapi.native_logs import import_tensorflow

LAYER_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "MatMul"})
BATCH_NORMS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})


def fold_batch_norms(gd, outputs: Sequence[str]):
    """Fold inference batch norms into the Conv2D/DepthwiseConv2dNative/MatMul before them.

    ``layer -> [BatchToSpaceND] -> FusedBatchNorm*`` with constant parameters becomes
    ``layer(<scope>/mul_fold) -> [BatchToSpaceND] -> BiasAdd <scope>/add_fold``, with
    ``mul_fold = weights * gamma / sqrt(variance + epsilon)`` (per output channel) and
    ``bias = beta - mean * gamma / sqrt(variance + epsilon)``, as contrib.quantize's fold_batch_norms.py
    does for an eval graph. Returns (new GraphDef, number of folds)."""
    tf = import_tensorflow()
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(gd)
    g = Graph(out)
    folded, drop = 0, set()
    for bn in list(out.node):
        if bn.op not in BATCH_NORMS or bn.attr["is_training"].b:
            continue
        if bn.attr["data_format"].s not in (b"", b"NHWC"):
            continue
        params = [g.const_value(r) for r in bn.input[1:5]]
        if any(p is None for p in params):
            continue
        src = g.by_name.get(base(bn.input[0]))
        b2s = None
        if src is not None and src.op == "BatchToSpaceND":
            b2s, src = src, g.by_name.get(base(src.input[0]))
        if src is None or src.op not in LAYER_OPS:
            continue
        w = g.const_value(src.input[1])
        if w is None or len(g.users(src.name, None)) != 1:
            continue
        if b2s is not None and len(g.users(b2s.name, None)) != 1:
            continue
        if any(p != 0 for _, p in g.consumers.get(bn.name, [])):
            continue  # a training output (batch mean/variance) is used
        gamma, beta, mean, var = (np.asarray(p, np.float32) for p in params)
        mult = gamma / np.sqrt(var + np.float32(bn.attr["epsilon"].f))
        if src.op == "DepthwiseConv2dNative":
            wf = w * mult.reshape(w.shape[2], w.shape[3])
        elif src.op == "MatMul" and src.attr["transpose_b"].b:
            wf = w * mult[:, None]
        else:
            wf = w * mult
        scope = context(src.name)
        mul = const_node(out, g.unique_name(join(scope, "mul_fold")), wf.astype(np.float32))
        g.add(mul)
        src.input[1] = mul.name
        bias = const_node(out, g.unique_name(join(scope, "BatchNorm_Fold/bias")), beta - mean * mult)
        g.add(bias)
        add = out.node.add()
        add.name = g.unique_name(join(scope, "add_fold"))
        add.op = "BiasAdd"
        add.input.extend([bn.input[0], bias.name])
        add.attr["T"].type = tf.float32.as_datatype_enum
        add.attr["data_format"].s = b"NHWC"
        g.add(add)
        g.reroute(bn.name, add.name)
        drop.add(bn.name)
        folded += 1
    if drop:
        kept = [n for n in out.node if n.name not in drop]
        del out.node[:]
        out.node.extend(kept)
    return prune(out, outputs), folded


