"""Small TFLite models that vary what the delegate's rules look at: the differential test's corpus.

Public API::

    from deeplab_nnapi.probe.modelgen import generate_specs, build_model
    specs = generate_specs(seed=1)             # [ModelSpec], deterministic for a seed
    data = build_model(specs[0])               # the .tflite bytes (TFLite's schema object API)

Families: the pools around the 256 filter-area limit (quantized and float, every pool kind), bilinear and
nearest-neighbour resizes over align_corners/half_pixel_centers and constant or computed sizes, ARG_MAX /
ARG_MIN over output and axis types, the other ops DeepLab uses (CONV_2D, DEPTHWISE_CONV_2D, ADD,
CONCATENATION, MEAN, RESHAPE, QUANTIZE/DEQUANTIZE) with their options, a few dozen ops it does not use, and
chains that mix accepted and refused ops so partitioning and the partition limit come into play. A spec is
plain data (family and parameters); the same spec always builds the same model.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import flatbuffers
import numpy as np

from deeplab_nnapi.fixer.model_io import schema

_QUANT = {"UINT8": (0.5, 128), "INT8": (0.5, 0), "INT16": (0.25, 0), "INT32": (0.25, 0)}
_NP = {
    "FLOAT32": np.float32,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "INT16": np.int16,
    "BOOL": np.bool_,
    "FLOAT16": np.float16,
}


@dataclass(frozen=True)
class ModelSpec:
    family: str
    params: Tuple[Tuple[str, Any], ...]

    @property
    def p(self) -> Dict[str, Any]:
        return dict(self.params)

    @property
    def key(self) -> str:
        """A stable name: family and a hash of the parameters (the golden data's key)."""
        text = json.dumps([self.family, [list(x) for x in self.params]], sort_keys=True)
        return f"{self.family}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    def describe(self) -> str:
        return f"{self.family}(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"


def spec(family: str, **params: Any) -> ModelSpec:
    return ModelSpec(family, tuple(sorted(params.items())))


# ---- building --------------------------------------------------------------------------------


class Graph:
    """One subgraph under construction."""

    def __init__(self) -> None:
        self.s = schema()
        self.tensors: List[Any] = []
        self.buffers: List[Any] = [self.s.BufferT()]
        self.ops: List[Any] = []
        self.codes: List[Tuple[int, int]] = []  # (builtin code, version)
        self.inputs: List[int] = []

    def tensor(
        self,
        shape: Sequence[int],
        dtype: str = "FLOAT32",
        data: Optional[np.ndarray] = None,
        quant: Optional[Tuple[Any, Any]] = None,
        name: Optional[str] = None,
        quantized_dimension: int = 0,
    ) -> int:
        t = self.s.TensorT()
        t.shape = list(shape)
        t.type = getattr(self.s.TensorType, dtype)
        t.name = (name or f"t{len(self.tensors)}").encode()
        if quant is None and dtype in _QUANT:
            quant = _QUANT[dtype]
        if quant is not None:
            q = self.s.QuantizationParametersT()
            scale, zp = quant
            q.scale = list(np.atleast_1d(scale).astype(np.float32))
            q.zeroPoint = list(np.atleast_1d(zp).astype(np.int64))
            q.quantizedDimension = quantized_dimension
            t.quantization = q
        if data is not None:
            b = self.s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=_NP[dtype]).tobytes(), np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, shape: Sequence[int], dtype: str = "FLOAT32", **kw: Any) -> int:
        i = self.tensor(shape, dtype, **kw)
        self.inputs.append(i)
        return i

    def const(self, values: Any, dtype: str, shape: Optional[Sequence[int]] = None, **kw: Any) -> int:
        arr = np.asarray(values, dtype=_NP[dtype])
        return self.tensor(list(shape if shape is not None else arr.shape), dtype, data=arr, **kw)

    def op(
        self, name: str, inputs: Sequence[int], outputs: Sequence[int], options: Any = None, version: int = 1
    ) -> None:
        code = getattr(self.s.BuiltinOperator, name)
        if (code, version) not in self.codes:
            self.codes.append((code, version))
        o = self.s.OperatorT()
        o.opcodeIndex = self.codes.index((code, version))
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options is not None:
            cls_name = type(options).__name__[:-1]  # Pool2DOptionsT -> Pool2DOptions
            o.builtinOptionsType = getattr(self.s.BuiltinOptions, cls_name)
            o.builtinOptions = options
        self.ops.append(o)

    def options(self, cls: str, **fields: Any) -> Any:
        o = getattr(self.s, cls)()
        for k, v in fields.items():
            setattr(o, k, v)
        return o

    def finish(self, outputs: Sequence[int]) -> bytes:
        s = self.s
        sg = s.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs = list(self.inputs), list(outputs)
        m = s.ModelT()
        m.version = 3
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.description = b"deeplab-nnapi differential model"
        codes = []
        for code, version in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)
            c.version = version
            codes.append(c)
        m.operatorCodes = codes
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _act(g: Graph, name: str) -> int:
    return getattr(g.s.ActivationFunctionType, name)


def _pad(g: Graph, name: str) -> int:
    return getattr(g.s.Padding, name)


def _out_hw(size: int, filt: int, stride: int, padding: str, dilation: int = 1) -> int:
    eff = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return max(1, (size - eff) // stride + 1)


# ---- families --------------------------------------------------------------------------------


def _pool(p: Dict[str, Any]) -> bytes:
    g = Graph()
    (fw, fh), dt = p["filter"], p["dtype"]
    h, w = max(fh, 2) + p["extra"], max(fw, 2) + p["extra"]
    x = g.input([1, h, w, 2], dt)
    oh = _out_hw(h, fh, p["stride"], p["padding"])
    ow = _out_hw(w, fw, p["stride"], p["padding"])
    y = g.tensor([1, oh, ow, 2], dt)
    opts = g.options(
        "Pool2DOptionsT",
        padding=_pad(g, p["padding"]),
        strideW=p["stride"],
        strideH=p["stride"],
        filterWidth=fw,
        filterHeight=fh,
        fusedActivationFunction=_act(g, p["act"]),
    )
    g.op(p["op"], [x], [y], opts, p["version"])
    return g.finish([y])


def _resize(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt = p["dtype"]
    (ih, iw), (oh, ow) = p["in_hw"], p["out_hw"]
    x = g.input([1, ih, iw, 3], dt)
    size = g.const([oh, ow], "INT32") if p["size"] == "const" else g.input([2], "INT32")
    y = g.tensor([1, oh, ow, 3], dt)
    cls = "ResizeBilinearOptionsT" if p["op"] == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptionsT"
    g.op(
        p["op"],
        [x, size],
        [y],
        g.options(cls, alignCorners=p["align_corners"], halfPixelCenters=p["half_pixel_centers"]),
        p["version"],
    )
    return g.finish([y])


def _argmax(p: Dict[str, Any]) -> bytes:
    g = Graph()
    shape = [1, 5, 6, 7][-p["rank"] :]
    x = g.input(shape, p["dtype"])
    axis_value = p["axis"] % p["rank"]
    if p["axis_kind"] == "const32":
        axis = g.const([p["axis"]], "INT32")
    elif p["axis_kind"] == "const64":
        axis = g.const([p["axis"]], "INT64")
    elif p["axis_kind"] == "scalar32":
        axis = g.const(p["axis"], "INT32", shape=[])
    else:
        axis = g.input([1], "INT32")
    out_shape = [d for i, d in enumerate(shape) if i != axis_value]
    y = g.tensor(out_shape, p["out"])
    cls = "ArgMaxOptionsT" if p["op"] == "ARG_MAX" else "ArgMinOptionsT"
    g.op(p["op"], [x, axis], [y], g.options(cls, outputType=getattr(g.s.TensorType, p["out"])), p["version"])
    return g.finish([y])


def _conv(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt, cin, cout, k = p["dtype"], 4, p["cout"], p["k"]
    x = g.input([1, 9, 9, cin], dt)
    quant_w = dt in ("UINT8", "INT8")
    wdt = "INT8" if dt == "INT8" else ("UINT8" if dt == "UINT8" else "FLOAT32")
    depthwise = p["op"] == "DEPTHWISE_CONV_2D"
    mult = p.get("multiplier", 1)
    wshape = [1, k, k, cin * mult] if depthwise else [cout, k, k, cin]
    nout = cin * mult if depthwise else cout
    rng = np.random.default_rng(7)
    wvals = rng.integers(-3, 4, size=wshape)
    wq = None
    if quant_w:
        if p.get("per_channel"):
            wq = (np.full(nout, 0.05), np.zeros(nout, dtype=np.int64))
        else:
            wq = (0.05, 128 if wdt == "UINT8" else 0)
        wvals = wvals + (128 if wdt == "UINT8" else 0)
    w = g.const(wvals, wdt, quant=wq, quantized_dimension=3 if depthwise else 0)
    inputs = [x, w]
    if p["bias"] is True:
        bdt = "INT32" if quant_w else "FLOAT32"
        bq = (
            (np.full(nout, 0.025), np.zeros(nout, dtype=np.int64))
            if p.get("per_channel")
            else ((0.025, 0) if quant_w else None)
        )
        inputs.append(g.const(np.zeros(nout), bdt, quant=bq))
    elif p["bias"] == "minus1":  # the optional-tensor index; "omitted": two inputs
        inputs.append(-1)
    d, st = p["dilation"], p["stride"]
    oh = _out_hw(9, k, st, p["padding"], d)
    y = g.tensor([1, oh, oh, nout], dt)
    if depthwise:
        opts = g.options(
            "DepthwiseConv2DOptionsT",
            padding=_pad(g, p["padding"]),
            strideW=st,
            strideH=st,
            depthMultiplier=mult,
            fusedActivationFunction=_act(g, p["act"]),
            dilationWFactor=d,
            dilationHFactor=d,
        )
    else:
        opts = g.options(
            "Conv2DOptionsT",
            padding=_pad(g, p["padding"]),
            strideW=st,
            strideH=st,
            fusedActivationFunction=_act(g, p["act"]),
            dilationWFactor=d,
            dilationHFactor=d,
        )
    g.op(p["op"], inputs, [y], opts, p["version"])
    return g.finish([y])


def _binary(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt = p["dtype"]
    a = g.input([1, 4, 4, 3], dt)
    b = g.input(
        p.get("b_shape", [1, 4, 4, 3]),
        dt,
        quant=(0.25, _QUANT[dt][1]) if dt in _QUANT and p.get("other_scale") else None,
    )
    y = g.tensor([1, 4, 4, 3], dt)
    cls = {"ADD": "AddOptionsT", "MUL": "MulOptionsT", "SUB": "SubOptionsT", "DIV": "DivOptionsT"}.get(
        p["op"]
    )
    opts = g.options(cls, fusedActivationFunction=_act(g, p["act"])) if cls else None
    g.op(p["op"], [a, b], [y], opts, p["version"])
    return g.finish([y])


def _concat(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt, axis, n = p["dtype"], p["axis"], p["n"]
    shape = [1, 4, 4, 3]
    ins = [
        g.input(
            shape,
            dt,
            quant=((0.5 if i == 0 or not p["mixed_quant"] else 0.25), _QUANT[dt][1])
            if dt in _QUANT
            else None,
        )
        for i in range(n)
    ]
    out = list(shape)
    out[axis % 4] *= n
    y = g.tensor(out, dt)
    g.op(
        "CONCATENATION",
        ins,
        [y],
        g.options("ConcatenationOptionsT", axis=axis, fusedActivationFunction=_act(g, p["act"])),
        p["version"],
    )
    return g.finish([y])


def _mean(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt = p["dtype"]
    shape = [1, 6, 6, 4] if p.get("rank", 4) == 4 else [1, 2, 6, 6, 4]
    x = g.input(shape, dt)
    axes = g.const(p["axes"], "INT32")
    if p["keep_dims"]:
        out = [1 if i in p["axes"] else d for i, d in enumerate(shape)]
    else:
        out = [d for i, d in enumerate(shape) if i not in p["axes"]]
    y = g.tensor(out, dt, quant=(0.25, _QUANT[dt][1]) if dt in _QUANT and p["requant"] else None)
    g.op(p["op"], [x, axes], [y], g.options("ReducerOptionsT", keepDims=p["keep_dims"]), p["version"])
    return g.finish([y])


def _unary(p: Dict[str, Any]) -> bytes:
    """Ops with one tensor in and one out of the same shape (and their own small options)."""
    g = Graph()
    dt, shape = p["dtype"], [1, 4, 4, 4][-p["rank"] :]
    x = g.input(shape, dt)
    out_dt = p.get("out_dtype", dt)
    y = g.tensor(
        shape,
        out_dt,
        quant=(1.0 / 256, -128 if out_dt == "INT8" else 0)
        if p["op"] in ("SOFTMAX", "LOGISTIC", "LOG_SOFTMAX") and out_dt in _QUANT
        else None,
    )
    opts = None
    if p["op"] == "SOFTMAX":
        opts = g.options("SoftmaxOptionsT", beta=p.get("beta", 1.0))
    elif p["op"] == "LEAKY_RELU":
        opts = g.options("LeakyReluOptionsT", alpha=0.2)
    elif p["op"] == "CAST":
        opts = g.options(
            "CastOptionsT",
            inDataType=getattr(g.s.TensorType, dt),
            outDataType=getattr(g.s.TensorType, out_dt),
        )
    elif p["op"] == "L2_NORMALIZATION":
        opts = g.options("L2NormOptionsT", fusedActivationFunction=0)
    g.op(p["op"], [x], [y], opts, p["version"])
    return g.finish([y])


def _shape_ops(p: Dict[str, Any]) -> bytes:
    """Ops that move data: RESHAPE, TRANSPOSE, PAD, SQUEEZE, STRIDED_SLICE, SPACE/DEPTH, GATHER, ..."""
    g = Graph()
    dt, op = p["dtype"], p["op"]
    x = g.input([1, 4, 4, 4], dt)
    const = p.get("const", True)

    def operand(values, dtype="INT32"):
        return g.const(values, dtype) if const else g.input([len(values)], dtype)

    if op == "RESHAPE":
        y = g.tensor([1, 16, 4], dt)
        g.op(
            op, [x, operand([1, 16, 4])], [y], g.options("ReshapeOptionsT", newShape=[1, 16, 4]), p["version"]
        )
    elif op == "TRANSPOSE":
        y = g.tensor([1, 4, 4, 4], dt)
        g.op(op, [x, operand([0, 2, 1, 3])], [y], None, p["version"])
    elif op in ("PAD", "PADV2"):
        pads = g.const([[0, 0], [1, 1], [1, 1], [0, 0]], "INT32") if const else g.input([4, 2], "INT32")
        ins = [x, pads]
        if op == "PADV2":
            ins.append(g.const([0], dt))
        y = g.tensor([1, 6, 6, 4], dt)
        g.op(op, ins, [y], None, p["version"])
    elif op == "SQUEEZE":
        y = g.tensor([4, 4, 4], dt)
        g.op(op, [x], [y], g.options("SqueezeOptionsT", squeezeDims=[0]), p["version"])
    elif op == "STRIDED_SLICE":
        y = g.tensor([1, 2, 2, 4], dt)
        g.op(
            op,
            [x, operand([0, 0, 0, 0]), operand([1, 4, 4, 4]), operand([1, 2, 2, 1])],
            [y],
            g.options(
                "StridedSliceOptionsT",
                beginMask=p.get("mask", 0),
                endMask=0,
                shrinkAxisMask=p.get("shrink", 0),
            ),
            p["version"],
        )
    elif op == "SPACE_TO_DEPTH":
        y = g.tensor([1, 2, 2, 16], dt)
        g.op(op, [x], [y], g.options("SpaceToDepthOptionsT", blockSize=2), p["version"])
    elif op == "DEPTH_TO_SPACE":
        y = g.tensor([1, 8, 8, 1], dt)
        g.op(op, [x], [y], g.options("DepthToSpaceOptionsT", blockSize=2), p["version"])
    elif op == "GATHER":
        y = g.tensor([1, 2, 4, 4], dt)
        g.op(op, [x, operand([0, 2])], [y], g.options("GatherOptionsT", axis=p.get("axis", 1)), p["version"])
    elif op == "SPLIT":
        ys = [g.tensor([1, 4, 4, 2], dt) for _ in range(2)]
        g.op(
            op,
            [g.const([3], "INT32") if const else g.input([1], "INT32"), x],
            ys,
            g.options("SplitOptionsT", numSplits=2),
            p["version"],
        )
        return g.finish(ys)
    elif op == "TILE":
        y = g.tensor([1, 8, 4, 4], dt)
        g.op(op, [x, operand([1, 2, 1, 1])], [y], None, p["version"])
    elif op == "EXPAND_DIMS":
        y = g.tensor([1, 1, 4, 4, 4], dt)
        g.op(op, [x, g.const([0], "INT32") if const else g.input([1], "INT32")], [y], None, p["version"])
    elif op == "SLICE":
        y = g.tensor([1, 2, 2, 4], dt)
        g.op(op, [x, operand([0, 1, 1, 0]), operand([1, 2, 2, 4])], [y], None, p["version"])
    elif op == "PACK":
        y = g.tensor([2, 1, 4, 4, 4], dt)
        x2 = g.input([1, 4, 4, 4], dt)
        g.op(op, [x, x2], [y], g.options("PackOptionsT", valuesCount=2, axis=p.get("axis", 0)), p["version"])
    else:  # pragma: no cover - the grid names only the ops above
        raise ValueError(op)
    return g.finish([y])


def _fully_connected(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt = p["dtype"]
    x = g.input([2, 8] if p["rank"] == 2 else [1, 2, 8], dt)
    wdt = dt if dt != "FLOAT32" else "FLOAT32"
    w = g.const(
        np.ones([4, 8]) + (128 if wdt == "UINT8" else 0),
        wdt,
        quant=(0.05, 128 if wdt == "UINT8" else 0) if wdt in _QUANT else None,
    )
    b = g.const(
        np.zeros(4), "INT32" if dt in _QUANT else "FLOAT32", quant=(0.025, 0) if dt in _QUANT else None
    )
    out = [2, 4] if p["rank"] == 2 or not p["keep_num_dims"] else [1, 2, 4]
    y = g.tensor(out, dt)
    g.op(
        "FULLY_CONNECTED",
        [x, w, b if p["bias"] else -1],
        [y],
        g.options(
            "FullyConnectedOptionsT",
            fusedActivationFunction=_act(g, p["act"]),
            keepNumDims=p["keep_num_dims"],
        ),
        p["version"],
    )
    return g.finish([y])


def _transpose_conv(p: Dict[str, Any]) -> bytes:
    g = Graph()
    dt = p["dtype"]
    x = g.input([1, 4, 4, 3], dt)
    w = g.const(
        np.ones([2, 3, 3, 3]) + (128 if dt == "UINT8" else 0),
        dt,
        quant=(0.05, 128 if dt == "UINT8" else 0) if dt in _QUANT else None,
    )
    shape = g.const([1, 8, 8, 2], "INT32") if p["const"] else g.input([4], "INT32")
    y = g.tensor([1, 8, 8, 2], dt)
    ins = [shape, w, x]
    if p["bias"]:
        ins.append(
            g.const(
                np.zeros(2),
                "INT32" if dt in _QUANT else "FLOAT32",
                quant=(0.025, 0) if dt in _QUANT else None,
            )
        )
    g.op(
        "TRANSPOSE_CONV",
        ins,
        [y],
        g.options("TransposeConvOptionsT", padding=_pad(g, "SAME"), strideW=2, strideH=2),
        p["version"],
    )
    return g.finish([y])


def _quantize(p: Dict[str, Any]) -> bytes:
    g = Graph()
    x = g.input([1, 4, 4, 3], p["in"])
    y = g.tensor([1, 4, 4, 3], p["out"], quant=(0.25, 3) if p["out"] in _QUANT and p["requant"] else None)
    g.op(p["op"], [x], [y], None, p["version"])
    return g.finish([y])


def _chain(p: Dict[str, Any]) -> bytes:
    """A chain of ops on one uint8 feature map; "refuse" links are refused at every API level."""
    g = Graph()
    x = g.input([1, 8, 8, 4], "UINT8")
    cur = x
    for link in p["links"]:
        y = g.tensor([1, 8, 8, 4], "UINT8")
        if link == "ok":
            g.op("RELU6", [cur], [y])  # ReLU6 on quant8: accepted everywhere
        elif link == "add":
            g.op("ADD", [cur, x], [y], g.options("AddOptionsT", fusedActivationFunction=0))
        elif link == "refuse":  # a resize with align_corners on API <= 29 / a >256 quantized pool: refused
            g.op(
                "AVERAGE_POOL_2D",
                [cur],
                [y],
                g.options(
                    "Pool2DOptionsT",
                    padding=_pad(g, "SAME"),
                    strideW=1,
                    strideH=1,
                    filterWidth=17,
                    filterHeight=17,
                ),
            )
        elif link == "argmax64":
            z = g.tensor([1, 8, 8], "INT64")
            g.op("ARG_MAX", [cur, g.const([3], "INT32")], [z], g.options("ArgMaxOptionsT", outputType=4))
            return g.finish([z])
        cur = y
    return g.finish([cur])


FAMILIES: Dict[str, Callable[[Dict[str, Any]], bytes]] = {
    "pool": _pool,
    "resize": _resize,
    "argmax": _argmax,
    "conv": _conv,
    "binary": _binary,
    "concat": _concat,
    "mean": _mean,
    "unary": _unary,
    "shape": _shape_ops,
    "fc": _fully_connected,
    "tconv": _transpose_conv,
    "quantize": _quantize,
    "chain": _chain,
}


def build_model(s: ModelSpec) -> bytes:
    return FAMILIES[s.family](s.p)


# ---- the grids --------------------------------------------------------------------------------


def _grid(
    family: str,
    axes: Dict[str, Sequence[Any]],
    rng: random.Random,
    count: Optional[int],
    fixed: Optional[Dict[str, Any]] = None,
) -> List[ModelSpec]:
    keys = list(axes)
    total = 1
    for k in keys:
        total *= len(axes[k])
    picks = range(total) if count is None or count >= total else sorted(rng.sample(range(total), count))
    out = []
    for n in picks:
        params = dict(fixed or {})
        for k in reversed(keys):
            n, r = divmod(n, len(axes[k]))
            params[k] = axes[k][r]
        out.append(spec(family, **params))
    return out


QUANT3 = ["FLOAT32", "UINT8", "INT8"]
ACTS = ["NONE", "RELU", "RELU6"]
FILTERS = [
    (2, 2),
    (3, 3),
    (16, 16),
    (15, 17),
    (17, 15),
    (16, 17),
    (17, 17),
    (1, 256),
    (1, 257),
    (256, 1),
    (257, 1),
    (33, 33),
    (65, 65),
]


def generate_specs(seed: int = 1, scale: float = 1.0) -> List[ModelSpec]:
    """The corpus: about 2,400 specs at scale 1.0, the same for the same seed and scale."""
    rng = random.Random(seed)

    def n(count: int) -> int:
        return max(1, int(count * scale))

    specs: List[ModelSpec] = []
    # Pools: every filter around the 256 limit, quantized and float, each pool kind.
    for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        specs += _grid(
            "pool",
            {
                "filter": FILTERS,
                "dtype": QUANT3 + ["INT16"],
                "padding": ["VALID", "SAME"],
                "stride": [1, 2],
                "act": ACTS,
                "version": [1, 2, 3],
                "extra": [0, 3],
            },
            rng,
            n(190 if op == "AVERAGE_POOL_2D" else 80),
            {"op": op},
        )
    # Resizes.
    for op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        specs += _grid(
            "resize",
            {
                "dtype": QUANT3 + ["INT16"],
                "align_corners": [False, True],
                "half_pixel_centers": [False, True],
                "size": ["const", "input"],
                "in_hw": [(4, 4), (4, 6)],
                "out_hw": [(8, 8), (8, 12), (3, 3)],
                "version": [1, 2, 3, 4],
            },
            rng,
            n(200 if op == "RESIZE_BILINEAR" else 140),
            {"op": op},
        )
    # ARG_MAX / ARG_MIN.
    for op in ("ARG_MAX", "ARG_MIN"):
        specs += _grid(
            "argmax",
            {
                "out": ["INT32", "INT64"],
                "axis_kind": ["const32", "const64", "scalar32", "input"],
                "dtype": QUANT3 + ["INT32"],
                "rank": [2, 3, 4],
                "axis": [-1, 1],
                "version": [1, 2, 3],
            },
            rng,
            n(130),
            {"op": op},
        )
    # The other ops DeepLab uses.
    specs += _grid(
        "conv",
        {
            "dtype": QUANT3,
            "k": [1, 3],
            "stride": [1, 2],
            "dilation": [1, 2],
            "padding": ["SAME", "VALID"],
            "act": ACTS,
            "bias": [True, "omitted", "minus1"],
            "per_channel": [False, True],
            "version": [1, 2, 3, 4, 5, 6],
            "cout": [4],
        },
        rng,
        n(170),
        {"op": "CONV_2D"},
    )
    specs += _grid(
        "conv",
        {
            "dtype": QUANT3,
            "k": [3],
            "stride": [1, 2],
            "dilation": [1, 2],
            "padding": ["SAME", "VALID"],
            "act": ACTS,
            "bias": [True, "omitted", "minus1"],
            "per_channel": [False, True],
            "multiplier": [1, 2],
            "version": [1, 2, 3, 4],
            "cout": [4],
        },
        rng,
        n(150),
        {"op": "DEPTHWISE_CONV_2D"},
    )
    for op in ("ADD", "MUL", "SUB", "DIV", "MAXIMUM", "MINIMUM", "PRELU"):
        specs += _grid(
            "binary",
            {
                "dtype": QUANT3 + ["INT32"],
                "act": ACTS if op in ("ADD", "MUL", "SUB", "DIV") else ["NONE"],
                "other_scale": [False, True],
                "b_shape": [[1, 4, 4, 3], [1, 1, 1, 3]],
                "version": [1, 2, 3],
            },
            rng,
            n(60 if op in ("ADD", "MUL") else 30),
            {"op": op},
        )
    specs += _grid(
        "concat",
        {
            "dtype": QUANT3,
            "axis": [3, -1, 1, 0],
            "n": [2, 3],
            "mixed_quant": [False, True],
            "act": ["NONE", "RELU"],
            "version": [1, 2, 3],
        },
        rng,
        n(110),
    )
    for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        specs += _grid(
            "mean",
            {
                "dtype": QUANT3,
                "axes": [[1, 2], [3], [0], [1]],
                "keep_dims": [True, False],
                "requant": [False, True],
                "version": [1, 2],
                "rank": [4, 5],
            },
            rng,
            n(80 if op == "MEAN" else 24),
            {"op": op},
        )
    # A few dozen ops DeepLab does not use.
    for op in (
        "SOFTMAX",
        "LOGISTIC",
        "TANH",
        "RELU",
        "RELU6",
        "RELU_N1_TO_1",
        "HARD_SWISH",
        "EXP",
        "LOG",
        "RSQRT",
        "SQRT",
        "SIN",
        "ABS",
        "NEG",
        "FLOOR",
        "ELU",
        "LOG_SOFTMAX",
        "LEAKY_RELU",
        "L2_NORMALIZATION",
        "LOCAL_RESPONSE_NORMALIZATION",
        "CAST",
        "CUMSUM",
        "ROUND",
        "SQUARE",
    ):
        specs += _grid("unary", {"dtype": QUANT3, "rank": [2, 4], "version": [1, 2]}, rng, n(10), {"op": op})
    for op in (
        "RESHAPE",
        "TRANSPOSE",
        "PAD",
        "PADV2",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SPACE_TO_DEPTH",
        "DEPTH_TO_SPACE",
        "GATHER",
        "SPLIT",
        "TILE",
        "EXPAND_DIMS",
        "SLICE",
        "PACK",
    ):
        specs += _grid(
            "shape",
            {"dtype": QUANT3 + ["INT32"], "const": [True, False], "version": [1, 2]},
            rng,
            n(12),
            {"op": op},
        )
    specs += _grid(
        "fc",
        {
            "dtype": QUANT3,
            "rank": [2, 3],
            "keep_num_dims": [False, True],
            "bias": [True, False],
            "act": ["NONE", "RELU"],
            "version": [1, 2, 3],
        },
        rng,
        n(40),
    )
    specs += _grid(
        "tconv",
        {"dtype": QUANT3, "const": [True, False], "bias": [True, False], "version": [1, 2, 3]},
        rng,
        n(24),
    )
    specs += _grid(
        "quantize",
        {
            "in": ["FLOAT32", "UINT8", "INT8", "FLOAT16"],
            "out": ["FLOAT32", "UINT8", "INT8"],
            "requant": [False, True],
            "version": [1, 2, 3],
        },
        rng,
        n(48),
        {"op": "QUANTIZE"},
    )
    specs += _grid(
        "quantize",
        {"in": ["UINT8", "INT8", "FLOAT16"], "out": ["FLOAT32"], "requant": [False], "version": [1, 2, 3]},
        rng,
        n(9),
        {"op": "DEQUANTIZE"},
    )
    # Chains: partitioning, the partition limit, refused ops in the middle.
    links = ["ok", "add", "refuse"]
    chains = set()
    while len(chains) < n(120):
        length = rng.randint(2, 8)
        chain = tuple(rng.choice(links) for _ in range(length))
        if rng.random() < 0.2:
            chain += ("argmax64",)
        chains.add(chain)
    specs += [spec("chain", links=list(c)) for c in sorted(chains)]
    return specs
