"""Helpers for the fix_model tests: small one-op models built with TFLite's schema object API, a runner, and
the reference material (through tests/reference_support.py). A uniquely named module."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from deeplab_nnapi.fixer.model_io import schema, write_model  # noqa: E402
from deeplab_nnapi.native_logs import litert_interpreter_class  # noqa: E402
from reference_support import MODELS_DIR, PASCAL_513_OS8, REFERENCE_MODELS, google_shaped  # noqa: E402

__all__ = ["MODELS_DIR", "PASCAL_513_OS8", "REFERENCE_MODELS", "google_shaped", "one_op_model", "run",
           "pool_model", "resize_model", "argmax_model"]


def _tensor(s: Any, name: str, type_name: str, shape: Sequence[int], quant: Optional[tuple] = None,
            buffer: int = 0) -> Any:
    t = s.TensorT()
    t.name = name.encode()
    t.type = getattr(s.TensorType, type_name)
    t.shape = np.asarray(shape, np.int32)
    t.buffer = buffer
    if quant is not None:
        q = s.QuantizationParametersT()
        q.scale = np.asarray([quant[0]], np.float32)
        q.zeroPoint = np.asarray([quant[1]], np.int64)
        t.quantization = q
    return t


def one_op_model(op_type: str, version: int, inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]],
                 options_type: Optional[str] = None, options: Any = None, signature: bool = True,
                 runtime_version: Optional[str] = "1.5.0") -> bytes:
    """A model with one operator. Each tensor: {name, type, shape, quant=(scale, zp), data=np.ndarray}.
    Tensors without data are graph inputs (inputs) or graph outputs (outputs)."""
    s = schema()
    model = s.ModelT()
    model.version = 3
    model.description = b"fix_model test graph"
    model.buffers = [s.BufferT()]
    sg = s.SubGraphT()
    sg.tensors, sg.name = [], b"main"
    graph_inputs = []
    for k, spec in enumerate(inputs + outputs):
        buffer = 0
        if spec.get("data") is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(spec["data"]).tobytes(), np.uint8)
            model.buffers.append(b)
            buffer = len(model.buffers) - 1
        sg.tensors.append(_tensor(s, spec["name"], spec["type"], spec["shape"], spec.get("quant"), buffer))
        if k < len(inputs) and buffer == 0:
            graph_inputs.append(len(sg.tensors) - 1)
    n_in = len(inputs)
    sg.inputs = np.asarray(graph_inputs, np.int32)
    sg.outputs = np.asarray(range(n_in, n_in + len(outputs)), np.int32)
    oc = s.OperatorCodeT()
    oc.builtinCode = getattr(s.BuiltinOperator, op_type)
    oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
    oc.version = version
    model.operatorCodes = [oc]
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs = np.arange(n_in, dtype=np.int32)
    op.outputs = np.arange(n_in, n_in + len(outputs), dtype=np.int32)
    if options_type:
        op.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
        op.builtinOptions = options
    sg.operators = [op]
    model.subgraphs = [sg]
    if runtime_version is not None:
        b = s.BufferT()
        b.data = np.frombuffer(runtime_version.encode().ljust(16, b"\0"), np.uint8)
        model.buffers.append(b)
        md = s.MetadataT()
        md.name, md.buffer = b"min_runtime_version", len(model.buffers) - 1
        model.metadata = [md]
    if signature:
        sd = s.SignatureDefT()
        sd.signatureKey = b"serving_default"
        sd.subgraphIndex = 0
        sd.inputs, sd.outputs = [], []
        for i, idx in enumerate(graph_inputs):
            tm = s.TensorMapT()
            tm.name, tm.tensorIndex = f"in{i}".encode(), idx
            sd.inputs.append(tm)
        for i, idx in enumerate(sg.outputs):
            tm = s.TensorMapT()
            tm.name, tm.tensorIndex = f"out{i}".encode(), int(idx)
            sd.outputs.append(tm)
        model.signatureDefs = [sd]
    return write_model(model)


def pool_model(h: int, w: int, c: int, fh: int, fw: int, stride: int = 1, padding: str = "VALID",
               quant=(0.05, 124), type_name: str = "UINT8", activation: str = "NONE") -> bytes:
    s = schema()
    if padding == "VALID":
        oh, ow = (h - fh) // stride + 1, (w - fw) // stride + 1
    else:
        oh, ow = -(-h // stride), -(-w // stride)
    o = s.Pool2DOptionsT()
    o.padding = getattr(s.Padding, padding)
    o.strideH = o.strideW = stride
    o.filterHeight, o.filterWidth = fh, fw
    o.fusedActivationFunction = getattr(s.ActivationFunctionType, activation)
    return one_op_model("AVERAGE_POOL_2D", 1,
                        [dict(name="x", type=type_name, shape=[1, h, w, c], quant=quant)],
                        [dict(name="pool", type=type_name, shape=[1, oh, ow, c], quant=quant)],
                        "Pool2DOptions", o)


def resize_model(n: int, m: int, c: int = 3, type_name: str = "UINT8", align: bool = True,
                 quant=(0.1, 36), version: int = 1) -> bytes:
    s = schema()
    o = s.ResizeBilinearOptionsT()
    o.alignCorners = align
    q = quant if type_name != "FLOAT32" else None
    return one_op_model("RESIZE_BILINEAR", version,
                        [dict(name="x", type=type_name, shape=[1, n, n, c], quant=q),
                         dict(name="size", type="INT32", shape=[2], data=np.asarray([m, m], np.int32))],
                        [dict(name="resized", type=type_name, shape=[1, m, m, c], quant=q)],
                        "ResizeBilinearOptions", o)


def argmax_model(h: int = 9, w: int = 9, c: int = 5, version: int = 1, output_type: str = "INT64") -> bytes:
    s = schema()
    o = s.ArgMaxOptionsT()
    o.outputType = getattr(s.TensorType, output_type)
    return one_op_model("ARG_MAX", version,
                        [dict(name="x", type="UINT8", shape=[1, h, w, c], quant=(0.1, 0)),
                         dict(name="axis", type="INT32", shape=[], data=np.asarray(3, np.int32))],
                        [dict(name="labels", type=output_type, shape=[1, h, w])], "ArgMaxOptions", o)


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    """The first output of a model on one input (TFLite's builtin kernels, no default delegate)."""
    interpreter, resolver = litert_interpreter_class()
    it = interpreter(model_content=model,
                     experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def random_input(model: bytes, seed: int) -> np.ndarray:
    interpreter, _ = litert_interpreter_class()
    spec = interpreter(model_content=model).get_input_details()[0]
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec["dtype"])
    if dtype == np.float32:
        return rng.uniform(-4, 4, spec["shape"]).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, spec["shape"]).astype(dtype)
