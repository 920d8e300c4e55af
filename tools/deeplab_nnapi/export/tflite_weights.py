"""Weights, biases and ranges from a DeepLab v3 MobileNetV2 ``.tflite``, for the real DeepLab graph.

A quantized DeepLab model carries everything the export needs besides the code: each CONV_2D and
DEPTHWISE_CONV_2D has its folded uint8 weights (scale, zero point) and its int32 bias (scale = input scale x
weight scale), and each activation its scale and zero point. The tensor names name DeepLab's scopes:

============================================================  ==========================================
tensor (published models; ours join names with ``;``)         what it gives
============================================================  ==========================================
``<layer>/weights_quant/FakeQuantWithMinMaxVars``,            the layer's folded weights and the range
``<layer>/weights``, ``<layer>/depthwise_weights``,           ``<layer>/weights_quant``
``<layer>/Conv2D``, ``<layer>/depthwise``
the conv's bias (any name: input 2 of the op)                 the folded bias
the conv's output                                             ``<layer>/act_quant``
an ADD's output                                               ``<block>/post_activation_bypass_quant``
AVERAGE_POOL_2D / RESIZE_BILINEAR outputs                     their input's range (checked)
the CONCATENATION's output                                    one of its inputs' ranges (checked)
============================================================  ==========================================

(``<layer>`` = e.g. ``MobilenetV2/expanded_conv_3/project``, ``aspp0``, ``logits/semantic``; the range
names are those of :func:`deeplab_nnapi.export.qat.quant_points`.)

:func:`read_source` reads and checks a model (no TensorFlow); anything it cannot place is refused naming the
first tensor that does not fit. :func:`write_package` / :func:`load_package` carry the result to the graph
builder's child process as one ``.npz``. There (:func:`variable_values`) the values go where the real
graph reads them: the weights as they are (already folded), the batch norm as the identity
(``gamma = 1, moving_mean = 0, moving_variance = 1 - epsilon``) with the bias as ``beta``, so that folding
gives back the model's weights and bias; and (:func:`ranges_for`) the min/max of each range chosen so that
the converter's own arithmetic (``scale = (max - min) / (qmax - qmin)`` in double, zero point
``round(qmin - min / scale)``, the scale stored as float32) yields exactly the model's scale and zero point,
and the bias scales (``input scale x weights scale`` in double) the model's bias scales. After conversion
:func:`adopt_source_form` gives the model the source's form where TF 2.x's converter chose another with the
same arithmetic (implied ReLUs, a requantizing QUANTIZE before the concatenation, the op order).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeplab_nnapi.errors import CheckFailed, UsageError

LAYER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
PASS_THROUGH = ("AVERAGE_POOL_2D", "RESIZE_BILINEAR")
KNOWN_OPS = frozenset(LAYER_OPS + PASS_THROUGH + ("ADD", "CONCATENATION", "ARG_MAX"))
PACKAGE_SCHEMA = 1

# A layer scope in a weights tensor's name. The converter joins the names of the nodes it fused with ';'
# (and, where it shared one buffer between layers, other layers' names after the layer's own): the first
# part that names a layer wins.
_SCOPE_RE = re.compile(r"^(?P<scope>.+?)/(?:weights_quant/FakeQuantWithMinMaxVars|weights|depthwise_weights"
                       r"|mul_fold|Conv2D|depthwise|Conv2D_Fold|depthwise_Fold"
                       r"|BatchNorm/FusedBatchNorm(?:V\d)?)$")
# DeepLab v3 MobileNetV2's layer scopes (backbone, image pooling, ASPP, projection, logits).
_LAYER_RE = re.compile(r"^(?:MobilenetV2/(?:Conv(?:_1)?|expanded_conv(?:_\d+)?/(?:expand|depthwise|project))"
                       r"|image_pooling|aspp\d|concat_projection|logits/semantic)$")
DUMMY_RANGE = (0.0, 6.0)
INPUT_RANGE = "input"


class WeightsError(CheckFailed):
    """The model's values do not fit the graph (exit 1 for that variant)."""


@dataclass(frozen=True)
class Quant:
    scale: float
    zero_point: int

    def to_json(self) -> list:
        return [self.scale, self.zero_point]

    def same(self, other: Quant) -> bool:
        return np.float32(self.scale) == np.float32(other.scale) and self.zero_point == other.zero_point


@dataclass
class Layer:
    """One CONV_2D / DEPTHWISE_CONV_2D of the model under its DeepLab scope."""

    scope: str
    kind: str  # "conv" | "depthwise"
    op_index: int
    weights_tensor: str
    bias_tensor: str
    weights_q: np.ndarray  # uint8, TFLite layout (O,H,W,I) or (1,H,W,C)
    weights_quant: Quant
    bias_q: np.ndarray  # int32
    bias_scale: float
    input_quant: Quant
    output_tensor: str
    output_quant: Quant
    activation: str  # fused activation: NONE, RELU, RELU6
    input_range: str = INPUT_RANGE  # the range name of the layer's input ("input": the model input)

    @property
    def narrow_range(self) -> bool:
        """contrib.quantize quantizes weights to [1, 255]; a weight at 0 needs the full range."""
        return bool(self.weights_q.min() >= 1)

    def weights_float(self) -> np.ndarray:
        """The dequantized weights in TensorFlow's layout: HWIO for Conv2D, HWCM (M = 1) for depthwise."""
        w = ((self.weights_q.astype(np.float64) - self.weights_quant.zero_point)
             * np.float64(np.float32(self.weights_quant.scale))).astype(np.float32)
        if self.kind == "depthwise":
            _, h, wd, c = w.shape
            return w.reshape(h, wd, c, 1)
        return np.transpose(w, (1, 2, 3, 0))

    def bias_float(self) -> np.ndarray:
        return (self.bias_q.astype(np.float64) * np.float64(np.float32(self.bias_scale))).astype(np.float32)


@dataclass
class SourceModel:
    """What a DeepLab .tflite holds, placed under DeepLab's names."""

    path: str
    input_size: Tuple[int, int]
    input_quant: Quant
    num_classes: int
    output_stride: int
    layers: Dict[str, Layer]
    # range name (qat.quant_points naming) -> (tensor name, quantization)
    ranges: Dict[str, Tuple[str, Quant]]
    concat: Optional[Tuple[str, Quant, Tuple[Quant, ...]]] = None  # (tensor, output, inputs)
    align_corners: bool = False
    argmax_type: str = "INT32"
    op_order: List[str] = field(default_factory=list)  # the ops' roles (op_roles) in the model's order

    @property
    def dummy(self) -> bool:
        """Every activation at the default range (0, 6): a dummy-quantized model."""
        q = Quant(DUMMY_RANGE[1] / 255.0, 0)
        return all(r.same(q) for name, (_, r) in self.ranges.items() if not name.endswith("/weights_quant"))

    def summary(self) -> Dict[str, object]:
        return {"file": Path(self.path).name, "input_size": list(self.input_size),
                "num_classes": self.num_classes, "output_stride": self.output_stride,
                "layers": len(self.layers), "ranges": len(self.ranges),
                "quantization": "dummy" if self.dummy else "qat",
                "align_corners": self.align_corners, "argmax": self.argmax_type.lower()}


def _scope_of(name: str) -> Optional[str]:
    for part in name.split(";"):
        m = _SCOPE_RE.match(part)
        if m and _LAYER_RE.match(m.group("scope")):
            return m.group("scope")
    return None


def op_roles(m) -> Dict[str, int]:
    """Each op's place in the graph (role -> op index) as neither the op order nor the converter's tensor
    names change it: a conv by its DeepLab layer scope, any other op by its type and its inputs' places
    (an ADD's sorted, it is commutative). ``m``: a :class:`~deeplab_nnapi.nnapi.tflite_model.TFLiteModel`."""
    producer = {t: op.index for op in m.operators for t in op.outputs}
    roles: Dict[int, str] = {}

    def role(i: int) -> str:
        if i in roles:
            return roles[i]
        op = m.operators[i]
        scope = _scope_of(m.tensors[op.inputs[1]].name) if op.op_type in LAYER_OPS and len(op.inputs) > 1 \
            else None
        if scope is not None:
            r = f"{op.op_type}:{scope}"
        else:
            parts = []
            for t in op.inputs:
                if t < 0 or m.tensors[t].is_constant:
                    continue
                parts.append(role(producer[t]) if t in producer else "input")
            if op.op_type == "ADD":
                parts.sort()
            r = f"{op.op_type}({', '.join(parts)})"
        roles[i] = r
        return r

    out: Dict[str, int] = {}
    for op in m.operators:
        r = role(op.index)
        k, n = r, 1
        while k in out:
            n += 1
            k = f"{r}#{n}"
        out[k] = op.index
    return out


def _label(t) -> str:
    name = t.name if len(t.name) <= 90 else t.name[:87] + "..."
    return f"tensor {t.index} {name!r}"


def read_source(path: Union[str, Path]) -> SourceModel:
    """Read a DeepLab v3 MobileNetV2 .tflite: layers, ranges, size, classes, output stride.

    Raises :class:`UsageError` naming the first tensor that does not fit DeepLab's structure."""
    from deeplab_nnapi.nnapi.tflite_model import load_model

    path = str(path)
    m = load_model(path)
    where = Path(path).name

    def bad(t, why: str) -> UsageError:
        return UsageError(f"{where}: {_label(t)} does not fit DeepLab v3 MobileNetV2: {why}")

    def quant(t) -> Quant:
        if t.type != "UINT8":
            raise bad(t, f"{t.type.lower()}, expected uint8")
        if t.num_scales != 1 or t.scale is None or t.zero_point is None:
            raise bad(t, "not quantized per tensor (one scale and zero point)")
        return Quant(float(t.scale), int(t.zero_point))

    if len(m.inputs) != 1 or len(m.outputs) != 1:
        raise UsageError(f"{where}: {len(m.inputs)} inputs and {len(m.outputs)} outputs, expected one each")
    inp = m.tensor(m.inputs[0])
    if len(inp.shape) != 4 or inp.shape[0] != 1 or inp.shape[3] != 3:
        raise bad(inp, f"input shape {list(inp.shape)}, expected [1, H, W, 3]")
    input_quant = quant(inp)
    producer: Dict[int, int] = {}
    for op in m.operators:
        for t in op.outputs:
            producer[t] = op.index
    layers: Dict[str, Layer] = {}
    ranges: Dict[str, Tuple[str, Quant]] = {}
    scope_of_tensor: Dict[int, str] = {}  # activation tensor -> layer scope that produced it
    quant_of: Dict[int, Quant] = {inp.index: input_quant}
    range_of: Dict[int, str] = {inp.index: INPUT_RANGE}  # activation tensor -> the range it has
    concat = None
    align = set()
    argmax_type = None
    feature_size = None

    for op in m.operators:
        if op.op_type not in KNOWN_OPS:
            t = m.tensor(op.outputs[0]) if op.outputs else inp
            raise bad(t, f"made by op {op.index} {op.op_type}, which DeepLab's graph does not have")
        outs = [m.tensor(i) for i in op.outputs]
        if op.op_type in LAYER_OPS:
            if len(op.inputs) != 3 or min(op.inputs) < 0:
                raise bad(outs[0], f"op {op.index} {op.op_type} without weights and bias")
            x, w, b = (m.tensor(i) for i in op.inputs)
            scope = _scope_of(w.name)
            if scope is None:
                raise bad(w, f"weights of op {op.index} {op.op_type}: no DeepLab layer scope in the name")
            if scope in layers:
                raise bad(w, f"a second layer {scope!r} (op {layers[scope].op_index} is the first)")
            if not w.is_constant or not b.is_constant:
                raise bad(w if not w.is_constant else b, f"op {op.index}: weights and bias must be constant")
            wq = quant(w)
            if b.type != "INT32" or b.num_scales != 1 or b.scale is None:
                raise bad(b, "bias must be int32 with one scale")
            if x.index not in quant_of:
                raise bad(x, f"input of op {op.index} comes from nowhere DeepLab's graph has")
            wv = m.constant_values(w.index, max_elements=1 << 26)
            bv = m.constant_values(b.index, max_elements=1 << 26)
            if wv is None or bv is None:
                raise bad(w if wv is None else b, "constant without readable data")
            wv = wv.reshape(w.shape)
            kind = "conv" if op.op_type == "CONV_2D" else "depthwise"
            if kind == "depthwise" and op.options.get("depth_multiplier", 1) not in (0, 1):
                raise bad(w, "depthwise conv with a depth multiplier other than 1")
            out_channels = w.shape[0] if kind == "conv" else w.shape[3]
            if bv.shape != (out_channels,):
                raise bad(b, f"{bv.size} values for {out_channels} output channels")
            y = outs[0]
            yq = quant(y)
            layers[scope] = Layer(scope=scope, kind=kind, op_index=op.index, weights_tensor=w.name,
                                  bias_tensor=b.name, weights_q=np.array(wv, np.uint8), weights_quant=wq,
                                  bias_q=np.array(bv, np.int32), bias_scale=float(b.scale),
                                  input_quant=quant_of[x.index], output_tensor=y.name, output_quant=yq,
                                  activation=str(op.options.get("fused_activation_function", "NONE")),
                                  input_range=range_of[x.index])
            ranges[f"{scope}/weights_quant"] = (w.name, wq)
            ranges[f"{scope}/act_quant"] = (y.name, yq)
            scope_of_tensor[y.index] = scope
            quant_of[y.index] = yq
            range_of[y.index] = f"{scope}/act_quant"
            if scope == "aspp0":
                feature_size = (x.shape[1], x.shape[2])
        elif op.op_type == "ADD":
            y = outs[0]
            srcs = [scope_of_tensor.get(i) for i in op.inputs]
            blocks = [s.rpartition("/")[0] for s in srcs if s and s.endswith("/project")]
            if len(op.inputs) != 2 or not blocks or any(i not in quant_of for i in op.inputs):
                raise bad(y, f"op {op.index} ADD is not a residual of two MobileNetV2 blocks")
            block = max(blocks, key=lambda s: int(s.rpartition("_")[2]) if s[-1].isdigit() else 0)
            yq = quant(y)
            ranges[f"{block}/post_activation_bypass_quant"] = (y.name, yq)
            quant_of[y.index] = yq
            range_of[y.index] = f"{block}/post_activation_bypass_quant"
            scope_of_tensor[y.index] = f"{block}/add"
        elif op.op_type in PASS_THROUGH:
            x, y = m.tensor(op.inputs[0]), outs[0]
            if x.index not in quant_of:
                raise bad(x, f"input of op {op.index} {op.op_type} comes from nowhere DeepLab's graph has")
            yq = quant(y)
            if not yq.same(quant_of[x.index]):
                raise bad(y, f"op {op.index} {op.op_type} changes the range ({yq.scale:.6g}/{yq.zero_point}, "
                             f"input {quant_of[x.index].scale:.6g}/{quant_of[x.index].zero_point})")
            quant_of[y.index] = yq
            range_of[y.index] = range_of[x.index]
            if op.op_type == "RESIZE_BILINEAR":
                align.add(bool(op.options.get("align_corners", False)))
        elif op.op_type == "CONCATENATION":
            y = outs[0]
            if any(i not in quant_of for i in op.inputs):
                raise bad(y, f"op {op.index} CONCATENATION of tensors DeepLab's graph does not have")
            yq = quant(y)
            concat = (y.name, yq, tuple(quant_of[i] for i in op.inputs))
            # the output's range is the union of the inputs' (TF 1.x's converter), or all are one range
            same = [range_of[i] for i in op.inputs if quant_of[i].same(yq)]
            if not same:
                raise bad(y, f"op {op.index} CONCATENATION: the output's range is none of its inputs'")
            quant_of[y.index] = yq
            range_of[y.index] = same[0]
        elif op.op_type == "ARG_MAX":
            y = outs[0]
            argmax_type = y.type
            if y.type not in ("INT32", "INT64"):
                raise bad(y, f"ArgMax output {y.type.lower()}")
    # every uint8 activation must have been placed (a model with extra branches is refused above, by op)
    if "logits/semantic" not in layers:
        raise UsageError(f"{where}: no logits/semantic layer: not a DeepLab v3 model")
    if feature_size is None:
        raise UsageError(f"{where}: no aspp0 layer: not a DeepLab v3 model")
    logits = layers["logits/semantic"]
    num_classes = int(logits.weights_q.shape[0])
    h, w = int(inp.shape[1]), int(inp.shape[2])
    fh = int(feature_size[0])
    stride = (h - 1) // (fh - 1) if fh > 1 else 0
    if stride not in (8, 16, 32) or (h - 1) % stride:
        raise UsageError(f"{where}: input {h}x{w} and feature map {feature_size[0]}x{feature_size[1]} give "
                         "no output stride of 8, 16 or 32")
    return SourceModel(path=path, input_size=(h, w), input_quant=input_quant, num_classes=num_classes,
                       output_stride=stride, layers=layers, ranges=ranges, concat=concat,
                       align_corners=any(align), argmax_type=argmax_type or "INT32",
                       op_order=[r for r, _ in sorted(op_roles(m).items(), key=lambda kv: kv[1])])


# ----------------------------------------------------------------------------------------------------
# the package the graph builder reads (parent -> child)


def write_package(source: SourceModel, path: Union[str, Path]) -> None:
    """One ``.npz``: per layer its float weights (TF layout) and bias, plus a JSON header."""
    arrays: Dict[str, np.ndarray] = {}
    meta = {"schema": PACKAGE_SCHEMA, "source": Path(source.path).name, "layers": {}, "ranges": {}}
    for scope, layer in source.layers.items():
        arrays[f"{scope}:weights"] = layer.weights_float()
        arrays[f"{scope}:bias"] = layer.bias_float()
        meta["layers"][scope] = {"kind": layer.kind, "weights_tensor": layer.weights_tensor,
                                 "bias_tensor": layer.bias_tensor, "narrow_range": layer.narrow_range,
                                 "input_range": layer.input_range, "bias_scale": layer.bias_scale,
                                 "activation": layer.activation, "output_tensor": layer.output_tensor}
    meta["input"] = source.input_quant.to_json()
    for name, (tensor, q) in source.ranges.items():
        narrow = (name.endswith("/weights_quant")
                  and source.layers[name[: -len("/weights_quant")]].narrow_range)
        meta["ranges"][name] = {"tensor": tensor, "scale": q.scale, "zero_point": q.zero_point,
                                "narrow_range": narrow}
    if source.concat is not None:
        tensor, q, ins = source.concat
        meta["concat"] = {"tensor": tensor, "scale": q.scale, "zero_point": q.zero_point,
                          "inputs": [x.to_json() for x in ins]}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@dataclass
class Package:
    meta: dict
    arrays: Dict[str, np.ndarray]

    @property
    def source(self) -> str:
        return str(self.meta.get("source", "the model"))


def load_package(path: Union[str, Path]) -> Package:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    if meta.get("schema") != PACKAGE_SCHEMA:
        raise WeightsError(f"weights package schema {meta.get('schema')!r}, expected {PACKAGE_SCHEMA}")
    return Package(meta, arrays)


# ----------------------------------------------------------------------------------------------------
# child side: variables and ranges of the real graph


def identity_variance(epsilon: float) -> np.float32:
    """A moving variance v with float32 ``v + epsilon == 1``: the batch norm multiplies by exactly 1."""
    eps = np.float32(epsilon)
    v = np.float32(1.0) - eps
    for _ in range(8):
        total = np.float32(v + eps)
        if total == np.float32(1.0):
            return v
        v = np.nextafter(v, np.float32(2.0) if total < 1 else np.float32(0.0), dtype=np.float32)
    return np.float32(1.0) - eps


def variable_values(variables: Sequence[Tuple[str, Tuple[int, ...]]], package: Package,
                    epsilons: Dict[str, float]) -> Dict[str, np.ndarray]:
    """The value of every graph variable (``(name, shape)``) from the package.

    ``epsilons``: the batch norm scope (``<layer>/BatchNorm``) -> its epsilon. A variable the package has no
    value for, a layer the graph does not use, or a shape that differs raise :class:`WeightsError`, naming
    the model's tensor where there is one."""
    values: Dict[str, np.ndarray] = {}
    used: set = set()
    meta = package.meta["layers"]
    for name, shape in variables:
        scope, _, leaf = name.rpartition("/")
        bn_scope = scope
        layer_scope = scope[: -len("/BatchNorm")] if scope.endswith("/BatchNorm") else scope
        info = meta.get(layer_scope)
        if info is None:
            raise WeightsError(f"the graph's variable {name} {list(shape)} has no layer {layer_scope!r} in "
                               f"{package.source}")
        used.add(layer_scope)
        shape = tuple(int(s) for s in shape)
        if leaf in ("weights", "depthwise_weights") and scope == layer_scope:
            value = package.arrays[f"{layer_scope}:weights"]
            what = info["weights_tensor"]
        elif leaf in ("biases", "beta"):
            value = package.arrays[f"{layer_scope}:bias"]
            what = info["bias_tensor"]
        elif leaf == "gamma":
            value = np.ones(shape, np.float32)
            what = None
        elif leaf == "moving_mean":
            value = np.zeros(shape, np.float32)
            what = None
        elif leaf == "moving_variance":
            if bn_scope not in epsilons:
                raise WeightsError(f"the graph's variable {name}: no batch norm op under {bn_scope}")
            value = np.full(shape, identity_variance(epsilons[bn_scope]), np.float32)
            what = None
        else:
            raise WeightsError(f"the graph's variable {name} {list(shape)}: nothing in {package.source} "
                               "gives its value")
        if tuple(value.shape) != shape:
            raise WeightsError(f"{package.source}: tensor {what!r} holds {list(value.shape)} (as TensorFlow "
                               f"lays it out), the graph's {name} is {list(shape)}")
        values[name] = value.astype(np.float32)
    unused = [s for s in meta if s not in used]
    if unused:
        info = meta[unused[0]]
        raise WeightsError(f"{package.source}: tensor {info['weights_tensor']!r} (layer {unused[0]}) does "
                           "not fit the graph: it has no such layer")
    return values


def _scale_and_zero_point(lo: np.ndarray, hi: np.ndarray, qmin: int, qmax: int):
    """The converter's arithmetic (``quant::fakeQuantAttrsToType``): the double scale from float32 min/max
    and the nudged zero point."""
    scale = (hi.astype(np.float64) - lo.astype(np.float64)) / (qmax - qmin)
    with np.errstate(divide="ignore", invalid="ignore"):
        zp_from_min = qmin - lo.astype(np.float64) / scale
    rounded = np.sign(zp_from_min) * np.floor(np.abs(zp_from_min) + 0.5)  # std::round: half away from 0
    zp = np.where(zp_from_min < qmin, qmin, np.where(zp_from_min > qmax, qmax, rounded))
    return scale, zp.astype(np.int64)


def _steps(x: np.float32, n: int) -> np.ndarray:
    """``x`` and its float32 neighbours up to ``n`` steps either side."""
    up, down = [x], [x]
    for _ in range(n):
        up.append(np.nextafter(up[-1], np.float32(np.inf), dtype=np.float32))
        down.append(np.nextafter(down[-1], np.float32(-np.inf), dtype=np.float32))
    return np.array(down[::-1] + up[1:], dtype=np.float32)


def range_candidates(scale: float, zero_point: int, narrow_range: bool = False, search: int = 24
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every float32 (min, max) near ``((qmin - zp) * scale, (qmax - zp) * scale)`` (``search`` float32 steps
    either side) from which the converter computes exactly this float32 scale and zero point, nearest
    first; and the double scale it computes from each.

    The converter (TF's FakeQuant legalization) computes ``scale = (max - min) / (qmax - qmin)`` in double
    from the float32 attributes, nudges the zero point to ``round(qmin - min / scale)`` and stores the
    scale as float32. The double scale also makes the bias scale (below), so the candidates differ in
    what matters."""
    qmin, qmax = (1, 255) if narrow_range else (0, 255)
    target = np.float32(scale)
    s = np.float64(target)
    los = _steps(np.float32((qmin - zero_point) * s), search)
    his = _steps(np.float32((qmax - zero_point) * s), search)
    dist = np.abs(np.arange(-search, search + 1))
    lo, hi = np.meshgrid(los, his, indexing="ij")
    order = np.argsort((dist[:, None] + dist[None, :]).ravel(), kind="stable")
    lo, hi = lo.ravel()[order], hi.ravel()[order]
    sc, zp = _scale_and_zero_point(lo, hi, qmin, qmax)
    ok = (sc > 0) & (sc.astype(np.float32) == target) & (zp == zero_point)
    if not ok.any():
        raise WeightsError(f"no float32 range gives scale {scale!r} and zero point {zero_point}")
    return lo[ok], hi[ok], sc[ok]


def exact_range(scale: float, zero_point: int, narrow_range: bool = False) -> Tuple[float, float, float]:
    """The nearest of :func:`range_candidates`: (min, max, double scale)."""
    lo, hi, sc = range_candidates(scale, zero_point, narrow_range)
    return float(lo[0]), float(hi[0]), float(sc[0])


def _bias_matches(d_in: np.ndarray, d_w: np.ndarray, bias_scale: float) -> np.ndarray:
    """[i, j]: the converter's bias scale ``float32(d_in[i] * d_w[j])`` is the model's."""
    return (np.outer(d_in, d_w)).astype(np.float32) == np.float32(bias_scale)


def ranges_for(points, package: Package, input_scale: float
               ) -> Tuple[Dict[str, Tuple[float, float]], Dict[str, bool], List[str]]:
    """(min, max) for each of ``points`` (:class:`deeplab_nnapi.export.qat.QuantPoint`) from the package's
    scales and zero points; each weights point's narrow_range; and the layers whose bias scale no range
    reproduces. ``input_scale``: the double scale of the model input (``1 / std``). A point without a
    range in the model, or a range no point takes, raise :class:`WeightsError`."""
    table = package.meta["ranges"]
    names = {p.name for p in points}
    for p in points:
        if p.name not in table:
            raise WeightsError(f"{package.source} has no tensor for the graph's range {p.name} (at {p.node})")
    extra = [n for n in table if n not in names]
    if extra:
        raise WeightsError(f"{package.source}: tensor {table[extra[0]]['tensor']!r} ({extra[0]}) does not "
                           "fit the graph: no such range in it")
    layers = package.meta["layers"]
    weights_points = [p for p in points if p.kind == "weights"]
    cand = {}  # range name -> (lo, hi, double scale) candidates
    for p in points:
        r = table[p.name]
        cand[p.name] = range_candidates(r["scale"], r["zero_point"], bool(r.get("narrow_range")))
    one = np.array([float(input_scale)])
    cand[INPUT_RANGE] = (one, one, one)
    consumers: Dict[str, List[str]] = {}  # activation range -> layers that read it
    for p in weights_points:
        scope = p.name[: -len("/weights_quant")]
        consumers.setdefault(layers.get(scope, {}).get("input_range", ""), []).append(scope)
    # each activation range: the candidate that lets most of the layers reading it hit their bias scale
    choice: Dict[str, int] = {INPUT_RANGE: 0}
    for name, scopes in consumers.items():
        if name not in cand or name == INPUT_RANGE:
            continue
        d_in = cand[name][2]
        score = np.zeros(d_in.size, np.int64)
        for scope in scopes:
            score += _bias_matches(d_in, cand[f"{scope}/weights_quant"][2],
                                   layers[scope]["bias_scale"]).any(axis=1)
        choice[name] = int(np.argmax(score))  # ties: the nearest
    out: Dict[str, Tuple[float, float]] = {}
    narrow: Dict[str, bool] = {}
    inexact: List[str] = []
    for p in points:
        if p.kind == "weights":
            continue
        lo, hi, _ = cand[p.name]
        k = choice.get(p.name, 0)
        out[p.name] = (float(lo[k]), float(hi[k]))
    for p in weights_points:
        scope = p.name[: -len("/weights_quant")]
        layer = layers.get(scope, {})
        src = layer.get("input_range", "")
        lo, hi, d_w = cand[p.name]
        k = 0
        if src in cand:
            d_in = cand[src][2][choice.get(src, 0)]
            hits = _bias_matches(np.array([d_in]), d_w, layer["bias_scale"])[0]
            if hits.any():
                k = int(np.argmax(hits))
            else:
                inexact.append(scope)
        else:
            inexact.append(scope)
        out[p.name] = (float(lo[k]), float(hi[k]))
        narrow[p.name] = bool(table[p.name]["narrow_range"])
    return out, narrow, inexact


# ----------------------------------------------------------------------------------------------------
# after conversion: the source model's form where it computes the same


_CLAMPS = {"NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def implied_by_range(activation: str, scale: float, zero_point: int) -> bool:
    """A fused activation clamps nothing a uint8 output with this scale and zero point can hold (TF 1.x's
    converter dropped such activations; TF 2.x's keeps them: the arithmetic is the same)."""
    if activation not in _CLAMPS:
        return False
    lo, hi = _CLAMPS[activation]
    s = float(np.float32(scale))
    return (0 - zero_point) * s >= lo and (255 - zero_point) * s <= hi


def adopt_source_form(model: bytes, source: SourceModel) -> Tuple[bytes, List[str]]:
    """Give a converted model the source model's form where that changes no arithmetic; return the model
    and what was changed.

    * A fused activation the source has not (or has) where the output's uint8 range implies it: TF 1.x's
      converter removed a RELU after a range with zero point 0, TF 2.x's keeps it fused.
    * A requantizing QUANTIZE in front of a CONCATENATION whose inputs have different scales in the source:
      TF 1.x's converter let the uint8 CONCATENATION rescale its inputs itself (NNAPI 1.2 accepts that),
      TF 2.x's inserts the QUANTIZE. It is removed and the CONCATENATION reads the tensor before it.
    """
    from deeplab_nnapi.fixer.graph import GraphEditor
    from deeplab_nnapi.fixer.model_io import read_model, write_model
    from deeplab_nnapi.nnapi.tflite_model import ACTIVATION_NAMES

    m = read_model(model, "converted model")
    ed = GraphEditor(m)
    changes: List[str] = []
    act_code = {v: k for k, v in ACTIVATION_NAMES.items()}
    for op in ed.sg.operators:
        kind = ed.op_type(op)
        if kind not in LAYER_OPS or op.builtinOptions is None:
            continue
        scope = _scope_of(ed.name(int(op.inputs[1])))
        layer = source.layers.get(scope) if scope else None
        if layer is None:
            continue
        have = ACTIVATION_NAMES.get(op.builtinOptions.fusedActivationFunction, "?")
        want = layer.activation
        scales, zps = ed.quant(int(op.outputs[0]))
        if have == want or not scales:
            continue
        if implied_by_range(have, scales[0], zps[0]) and implied_by_range(want, scales[0], zps[0]):
            op.builtinOptions.fusedActivationFunction = act_code[want]
            changes.append(f"{scope}: fused {have} -> {want} (implied by the output range)")
    if source.concat is not None and len({(np.float32(q.scale), q.zero_point) for q in source.concat[2]}) > 1:
        drop = []
        for op in ed.sg.operators:
            if ed.op_type(op) != "QUANTIZE":
                continue
            x, y = int(op.inputs[0]), int(op.outputs[0])
            users = ed.consumers(y)
            if (ed.type_name(x) != "UINT8" or ed.type_name(y) != "UINT8" or not users
                    or any(ed.op_type(u) != "CONCATENATION" for u in users) or y in list(ed.sg.outputs)):
                continue
            for u in users:
                u.inputs = np.asarray([x if i == y else i for i in u.inputs], dtype=np.int32)
            drop.append((op, y))
            changes.append(f"QUANTIZE of {ed.name(x)!r} in front of CONCATENATION removed (inputs of "
                           "different scales, as in the source)")
        for op, _ in drop:
            ed.sg.operators.remove(op)
        _remove_tensors(ed, [y for _, y in drop])
    if changes:
        model = write_model(m, len(model))
    reordered = _source_order(model, source)
    if reordered is not None:
        model = reordered
        changes.append("ops in the source's order (independent branches scheduled as there)")
    return model, changes


def _source_order(model: bytes, source: SourceModel) -> Optional[bytes]:
    """The model with its ops in the order of the same ops in the source (when that is a valid order and
    differs from the model's); None otherwise."""
    from deeplab_nnapi.fixer.model_io import read_model, write_model
    from deeplab_nnapi.nnapi.tflite_model import load_model

    if not source.op_order:
        return None
    roles = op_roles(load_model(model))
    rank = {r: k for k, r in enumerate(source.op_order)}
    if set(roles) != set(rank):
        return None
    order = sorted(roles.values(), key=lambda i: rank[next(r for r, j in roles.items() if j == i)])
    if order == sorted(order):
        return None
    m = read_model(model, "converted model")
    ops = list(m.subgraphs[0].operators)
    produced = set(int(i) for i in m.subgraphs[0].inputs)
    consts = {i for i, t in enumerate(m.subgraphs[0].tensors)
              if 0 < t.buffer < len(m.buffers) and m.buffers[t.buffer].data is not None
              and len(m.buffers[t.buffer].data)}
    for i in order:
        if any(int(x) >= 0 and int(x) not in produced and int(x) not in consts for x in ops[i].inputs):
            return None  # not a valid order here
        produced.update(int(x) for x in ops[i].outputs)
    m.subgraphs[0].operators = [ops[i] for i in order]
    return write_model(m, len(model))


def _remove_tensors(ed, indices: Sequence[int]) -> None:
    """Delete unused tensors and renumber every reference to the others."""
    gone = set(int(i) for i in indices)
    if not gone:
        return
    keep = [i for i in range(len(ed.sg.tensors)) if i not in gone]
    new = {old: k for k, old in enumerate(keep)}

    def remap(arr):
        return None if arr is None else np.asarray([new[int(i)] if int(i) >= 0 else -1 for i in arr],
                                                   dtype=np.int32)

    for op in ed.sg.operators:
        op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
        if op.intermediates is not None and len(op.intermediates):
            op.intermediates = remap(op.intermediates)
    ed.sg.inputs, ed.sg.outputs = remap(ed.sg.inputs), remap(ed.sg.outputs)
    ed.sg.tensors = [ed.sg.tensors[i] for i in keep]
    for sig in ed.model.signatureDefs or []:
        for t in list(sig.inputs or []) + list(sig.outputs or []):
            t.tensorIndex = new[int(t.tensorIndex)]
