"""Quantization-aware checkpoints without ``tf.contrib.quantize``: put the learned ranges back into the graph.

DeepLab's 8-bit checkpoint was trained under ``contrib.quantize.create_training_graph``; TF 1.x's
``export_model.py --quantize_delay_step=0`` then called ``create_eval_graph()``, which

1. folds every fused batch norm into the layer before it (``<scope>/mul_fold`` weights,
   ``<scope>/add_fold`` bias; ``fold_batch_norms.py``), and
2. puts a ``FakeQuantWithMinMaxVars`` after the folded weights and after each layer's output, reading its
   range from variables the checkpoint holds (``quantize.py``, ``quant_ops.py``):

   ========================================  =============================================  ============
   where                                     variables                                      narrow range
   ========================================  =============================================  ============
   weights of a Conv2D/Depthwise/MatMul      ``<layer scope>/weights_quant/{min,max}``      yes
   the layer's activation (Relu, Relu6,      ``<layer scope>/act_quant/{min,max}``          no
   Identity), or its bias add if it has none
   an Add of two layers before the           ``<layer scope>/conv_quant``, ``act_quant`` and
   activation (bypass)                       ``add_quant`` under the parent scope
   an Add after the activation (the          ``<scope of the add>/post_activation_bypass_quant``  no
   residual of MobileNetV2's blocks),
   unless a Relu follows it
   other Add/Mul fed by quantized tensors    ``<op>/activation_<op type>_quant``            no
   ========================================  =============================================  ============

   (``<layer scope>`` is the layer op's name without its last component, e.g. ``MobilenetV2/Conv`` for
   ``MobilenetV2/Conv/Conv2D``.)

TF 2.x has no contrib, so we do the same on the frozen float graph: step 1 is
:func:`deeplab_nnapi.export.bnfold.fold_batch_norms`; then :func:`quant_points` (where and under which
name), the ranges from a checkpoint (:func:`ranges_from_checkpoint`) or measured on images for random
weights (:func:`measure_ranges`: what the training would have recorded, ``min(x.min(), 0)`` /
``max(x.max(), 0)``), and :func:`insert_fake_quants`, which writes them as ``FakeQuantWithMinMaxVars``
with constant min/max, as a frozen TF 1.x QAT graph holds them. The converter then takes every range from
those nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from deeplab_nnapi.errors import CheckFailed
from deeplab_nnapi.export.bnfold import BATCH_NORMS, LAYER_OPS
from deeplab_nnapi.export.graphdef import Graph, base, const_node, context, join
from deeplab_nnapi.native_logs import import_tensorflow

ADDS = frozenset({"Add", "AddV2"})
BIAS_OPS = frozenset({"BiasAdd"}) | ADDS
ACTIVATIONS = frozenset({"Relu", "Relu6", "Identity"})
RELUS = frozenset({"Relu", "Relu6"})
PASS_THROUGH = frozenset({"Reshape", "Identity", "BatchToSpaceND", "SpaceToBatchND"})
FAKE_QUANT = "FakeQuantWithMinMaxVars"


class QatError(CheckFailed):
    """The graph cannot take the checkpoint's ranges (exit 1 for that variant)."""


@dataclass(frozen=True)
class QuantPoint:
    """One tensor contrib.quantize quantizes: its variable scope, the node whose output 0 it is, and how."""

    name: str  # e.g. "MobilenetV2/Conv/act_quant"; the checkpoint holds <name>/min and <name>/max
    node: str
    kind: str  # "weights" | "activation"
    narrow_range: bool = False
    alternatives: Tuple[str, ...] = ()  # other names the same variables may carry


# ----------------------------------------------------------------------------------------------------
# 1. where contrib.quantize puts its FakeQuant nodes, and under which names


def quant_points(gd, input_array: str, output_array: str) -> List[QuantPoint]:
    """The tensors between the input and output arrays that contrib.quantize quantizes (on a folded graph)."""
    g = Graph(gd)
    region = g.below(base(input_array))
    region.discard(base(output_array))
    points: List[QuantPoint] = []
    taken: Set[str] = set()

    def add(name: str, node: str, kind: str, narrow: bool = False, alternatives: Tuple[str, ...] = ()):
        if node not in taken:
            taken.add(node)
            points.append(QuantPoint(name, node, kind, narrow, alternatives))

    def sole(node, ops) -> Optional[object]:
        users = g.users(node.name)
        return users[0] if len(users) == 1 and users[0].op in ops else None

    for n in gd.node:  # (the order only decides which layer claims a tensor two layers would quantize)
        if n.name not in region or n.op not in LAYER_OPS or len(n.input) < 2 or not g.is_const(n.input[1]):
            continue
        scope = context(n.name)
        weight = g.by_name[base(n.input[1])]
        add(join(scope, "weights_quant"), weight.name, "weights", narrow=True)
        tail = sole(n, {"BatchToSpaceND"}) or n
        bias = sole(tail, BIAS_OPS)
        if bias is not None and not all(g.is_const(r) for r in bias.input if base(r) != tail.name):
            bias = None
        tail = bias or tail
        bypass = None
        for user in g.users(tail.name):
            if user.op in ADDS and any(a.op in ACTIVATIONS for a in g.users(user.name)):
                bypass = user
                break
        acts = [a for a in g.users((bypass or tail).name) if a.op in ACTIVATIONS]
        if acts and acts[0].op == "Identity" and any(u.op in BATCH_NORMS for u in g.users(acts[0].name)):
            continue  # conv -> identity -> unfolded batch norm: contrib skips it
        if bypass is not None:
            add(join(scope, "conv_quant"), tail.name, "activation")
            act_scope = context(scope)
        else:
            act_scope = scope
        if acts:
            act = acts[0]
            add(join(act_scope, "act_quant"), act.name, "activation")
            if bypass is not None and not any(u.op in ACTIVATIONS for u in g.users(bypass.name)):
                add(join(act_scope, "add_quant"), bypass.name, "activation")
            for post in g.users(act.name):
                if post.op in ADDS and not any(u.op in RELUS for u in g.users(post.name)):
                    add(join(context(post.name), "post_activation_bypass_quant"), post.name, "activation")
        elif bias is not None:
            add(join(scope, "act_quant"), bias.name, "activation")  # the final layer: its bias add
        elif any(u.op in LAYER_OPS for u in g.users(tail.name)):
            add(join(scope, "act_quant"), tail.name, "activation")  # separable conv: conv -> conv

    # Add/Mul fed (through pass-through ops) by quantized tensors (contrib's _QuantizeActivationLayers)
    def fed_by_quantized(node, depth: int = 0) -> bool:
        for ref in node.input:
            src = g.by_name.get(base(ref))
            while src is not None and src.op in PASS_THROUGH and src.name not in taken and src.input:
                src = g.by_name.get(base(src.input[0]))
            if src is None:
                continue
            if src.name in taken:
                return True
            if src.op in ADDS | {"Mul"} and depth < 8 and fed_by_quantized(src, depth + 1):
                return True
        return False

    for n in gd.node:
        if n.name not in region or n.name in taken or n.op not in ADDS | {"Mul"}:
            continue
        users = g.users(n.name)
        if len(users) == 1 and users[0].op in RELUS:
            continue
        if fed_by_quantized(n):
            # TF 1.x graphs may hold Add where TF 2.x writes AddV2: the checkpoint may use either name
            kinds = [n.op] + [k for k in (("Add", "AddV2") if n.op in ADDS else ()) if k != n.op]
            names = [join(n.name, f"activation_{k}_quant") for k in kinds]
            add(names[0], n.name, "activation", alternatives=tuple(names[1:]))
    return points


# ----------------------------------------------------------------------------------------------------
# 2. ranges


Ranges = Dict[str, Tuple[float, float]]


def ranges_from_checkpoint(prefix: str, points: Sequence[QuantPoint]) -> Tuple[Ranges, List[QuantPoint]]:
    """The ``<name>/min`` and ``<name>/max`` of each point in the checkpoint; and the points it lacks."""
    tf = import_tensorflow()
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:  # NotFoundError, DataLossError, ...
        raise QatError(f"cannot read checkpoint {prefix}: {' '.join(str(exc).split())[:300]}") from None
    ranges: Ranges = {}
    missing: List[QuantPoint] = []
    for p in points:
        for name in (p.name, *p.alternatives):
            if f"{name}/min" in shapes and f"{name}/max" in shapes:
                lo, hi = reader.get_tensor(f"{name}/min"), reader.get_tensor(f"{name}/max")
                if np.size(lo) != 1 or np.size(hi) != 1:
                    raise QatError(f"checkpoint range {name} is per channel (shape {np.shape(lo)}); "
                                   "only per-tensor ranges are supported")
                ranges[p.name] = (float(np.ravel(lo)[0]), float(np.ravel(hi)[0]))
                break
        else:
            missing.append(p)
    return ranges, missing


def measure_ranges(gd, points: Sequence[QuantPoint], feed: str, inputs: Sequence[np.ndarray]) -> Ranges:
    """The ranges a QAT training would have recorded for this graph: weights' own min/max, activations'
    min/max over ``inputs`` (each fed to tensor ``feed``), both widened to hold 0."""
    tf = import_tensorflow()
    g = Graph(gd)
    ranges: Ranges = {}
    acts = {}
    for p in points:
        if p.kind == "weights":
            w = g.const_value(p.node)
            if w is None:
                raise QatError(f"{p.name}: weights {p.node} are not constant")
            ranges[p.name] = (float(w.min()), float(w.max()))
        else:
            acts[p.name] = p.node + ":0"
    if acts:
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
        fetch = {k: graph.get_tensor_by_name(v) for k, v in acts.items()}
        lo = {k: np.inf for k in fetch}
        hi = {k: -np.inf for k in fetch}
        with tf.compat.v1.Session(graph=graph) as sess:
            for x in inputs:
                for k, v in sess.run(fetch, {feed if ":" in feed else feed + ":0": x}).items():
                    lo[k], hi[k] = min(lo[k], float(np.min(v))), max(hi[k], float(np.max(v)))
        ranges.update({k: (lo[k], hi[k]) for k in fetch})
    out: Ranges = {}
    for k, (mn, mx) in ranges.items():
        mn, mx = min(mn, 0.0), max(mx, 0.0)
        out[k] = (mn, mx if mx - mn > 1e-6 else mn + 1e-6)
    return out


def share_concat_ranges(gd, points: Sequence[QuantPoint], ranges: Ranges) -> Tuple[Ranges, List[List[str]]]:
    """Give the ranges that reach one concatenation's inputs their union.

    TF 1.x's converter (TOCO) accepted a uint8 CONCATENATION whose inputs have different scales; TF 2.x's
    converter instead adds a requantizing QUANTIZE op in front of it, which NNAPI before API 30 cannot
    run. So the points that feed a concatenation (through range-preserving ops such as the image-pooling
    branch's ResizeBilinear) share one range: for DeepLab, ``image_pooling/act_quant`` is widened to cover
    ``aspp0/act_quant``. Returns (new ranges, the groups that were joined)."""
    from deeplab_nnapi.export.convert import PASS_THROUGH_OPS

    g = Graph(gd)
    by_node = {p.node: p.name for p in points if p.name in ranges}
    parent = {name: name for name in by_node.values()}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def source(ref: str) -> Optional[str]:
        node, seen = g.by_name.get(base(ref)), set()
        while node is not None and node.name not in by_node and node.name not in seen:
            if node.op == FAKE_QUANT or node.op in PASS_THROUGH_OPS and node.input:
                seen.add(node.name)
                node = g.by_name.get(base(node.input[0]))
            else:
                return None
        return by_node.get(node.name) if node is not None else None

    for n in gd.node:
        if n.op not in ("ConcatV2", "Concat"):
            continue
        data = n.input[:-1] if n.op == "ConcatV2" else n.input[1:]
        found = [s for s in (source(r) for r in data if not r.startswith("^")) if s is not None]
        for s in found[1:]:
            parent[find(s)] = find(found[0])
    groups: Dict[str, List[str]] = {}
    for name in parent:
        groups.setdefault(find(name), []).append(name)
    out = dict(ranges)
    joined = [sorted(grp) for grp in groups.values() if len(grp) > 1]
    for grp in joined:
        lo, hi = min(ranges[p][0] for p in grp), max(ranges[p][1] for p in grp)
        for p in grp:
            out[p] = (lo, hi)
    return out, joined


# ----------------------------------------------------------------------------------------------------
# 3. FakeQuant nodes


def insert_fake_quants(gd, points: Sequence[QuantPoint], ranges: Ranges, num_bits: int = 8):
    """A copy of ``gd`` with ``<point>/FakeQuantWithMinMaxVars`` (constant ``<point>/min``, ``/max``) after
    each point that has a range; every consumer of the point's output 0 reads the FakeQuant instead."""
    tf = import_tensorflow()
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(gd)
    g = Graph(out)
    for p in points:
        if p.name not in ranges:
            continue
        mn, mx = ranges[p.name]
        if not (np.isfinite(mn) and np.isfinite(mx) and mn <= 0.0 <= mx and mx > mn):
            raise QatError(f"range of {p.name} is ({mn}, {mx}); it must be finite, hold 0 and not be empty")
        users = [u.name for u in g.users(p.node)]
        lo = const_node(out, g.unique_name(join(p.name, "min")), np.float32(mn))
        hi = const_node(out, g.unique_name(join(p.name, "max")), np.float32(mx))
        fq = out.node.add()
        fq.name = g.unique_name(join(p.name, FAKE_QUANT))
        fq.op = FAKE_QUANT
        fq.input.extend([p.node, lo.name, hi.name])
        fq.attr["num_bits"].i = num_bits
        fq.attr["narrow_range"].b = p.narrow_range
        for n in (lo, hi, fq):
            g.add(n)
        g.reroute(p.node, fq.name, only=users)
    return out


def missing_message(source: str, missing: Sequence[QuantPoint], total: int) -> str:
    names = ", ".join(f"{p.name}/min" for p in missing[:3]) + (", ..." if len(missing) > 3 else "")
    return (f"{source} has no quantization range for {len(missing)} of {total} tensors that "
            f"contrib.quantize quantizes ({names}): not a quantization-aware checkpoint of this graph "
            "(qat_fallback_default_ranges = true in the variant table gives them the default range)")
