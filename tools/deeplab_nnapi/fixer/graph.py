"""Editing the primary subgraph of a ``ModelT``: new tensors and constants, operator codes, operators.

Existing tensors, buffers and operator codes keep their indices (new ones are appended), so signature defs,
subgraph inputs/outputs and every other reference stay valid. Operators are addressed by object, not by
index, because a rewrite inserts operators and later rewrites must still find theirs.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fixer.model_io import schema
from deeplab_nnapi.nnapi.tflite_model import OPERATOR_NAMES, TENSOR_TYPE_NAMES

_NUMPY = {"FLOAT32": np.float32, "UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
          "INT64": np.int64}

#: Builtin codes above this are stored in OperatorCode.builtin_code only (schema v3a).
_DEPRECATED_CODE_MAX = 127


class GraphEditor:
    def __init__(self, model: Any) -> None:
        self.s = schema()
        self.model = model
        if not model.subgraphs:
            raise UsageError("model has no subgraph")
        self.sg = model.subgraphs[0]
        self.sg.tensors = list(self.sg.tensors or [])
        self.sg.operators = list(self.sg.operators or [])
        self.model.buffers = list(self.model.buffers or [])
        self.model.operatorCodes = list(self.model.operatorCodes or [])

    # --- reading -----------------------------------------------------------------------------------------
    def op_type(self, op: Any) -> str:
        oc = self.model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        return OPERATOR_NAMES.get(code, f"BUILTIN_{code}")

    def tensor(self, index: int) -> Any:
        return self.sg.tensors[index]

    def type_name(self, index: int) -> str:
        return TENSOR_TYPE_NAMES.get(self.sg.tensors[index].type, "?")

    def shape(self, index: int) -> List[int]:
        shape = self.sg.tensors[index].shape
        return [] if shape is None else [int(d) for d in shape]

    def name(self, index: int) -> str:
        raw = self.sg.tensors[index].name
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")

    def quant(self, index: int) -> tuple:
        """(scales, zero points) of a tensor, as tuples (empty when not quantized)."""
        q = self.sg.tensors[index].quantization
        if q is None:
            return (), ()
        scales = () if q.scale is None else tuple(float(x) for x in q.scale)
        zps = () if q.zeroPoint is None else tuple(int(x) for x in q.zeroPoint)
        return scales, zps

    def constant(self, index: int) -> Optional[np.ndarray]:
        """The values of a constant tensor (None when it has no data)."""
        t = self.sg.tensors[index]
        buf = self.model.buffers[t.buffer] if 0 < t.buffer < len(self.model.buffers) else None
        if buf is None or buf.data is None or len(buf.data) == 0:
            return None
        dtype = _NUMPY.get(self.type_name(index))
        if dtype is None:
            return None
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        size = np.dtype(dtype).itemsize
        if len(raw) % size:
            raise UsageError(f"tensor {index} '{self.name(index)}': its constant data ({len(raw)} bytes) is "
                             f"not a whole number of {self.type_name(index)} values; not a valid model")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))

    def consumers(self, index: int) -> List[Any]:
        return [op for op in self.sg.operators if op.inputs is not None and index in list(op.inputs)]

    def position(self, op: Any) -> int:
        for i, o in enumerate(self.sg.operators):
            if o is op:
                return i
        raise KeyError("operator not in the subgraph")

    # --- adding ------------------------------------------------------------------------------------------
    def add_tensor(self, name: str, type_name: str, shape: Sequence[int], like: Optional[int] = None,
                   buffer: int = 0) -> int:
        """A new tensor; ``like`` copies that tensor's quantization."""
        t = self.s.TensorT()
        t.name = name.encode("utf-8")
        t.type = getattr(self.s.TensorType, type_name)
        t.shape = np.asarray(list(shape), dtype=np.int32)
        t.buffer = buffer
        if like is not None:
            src = self.sg.tensors[like]
            t.quantization = copy.deepcopy(src.quantization)
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def add_constant(self, name: str, values: np.ndarray, type_name: str,
                     scales: Sequence[float] = (), zero_points: Sequence[int] = ()) -> int:
        """A new constant tensor with its own new buffer (never shares an existing one)."""
        arr = np.ascontiguousarray(values, dtype=np.dtype(_NUMPY[type_name]).newbyteorder("<"))
        buf = self.s.BufferT()
        buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
        self.model.buffers.append(buf)
        index = self.add_tensor(name, type_name, arr.shape, buffer=len(self.model.buffers) - 1)
        if scales:
            q = self.s.QuantizationParametersT()
            q.scale = np.asarray(scales, dtype=np.float32)
            q.zeroPoint = np.asarray(zero_points, dtype=np.int64)
            self.sg.tensors[index].quantization = q
        return index

    def opcode_index(self, op_type: str, version: int) -> int:
        code = getattr(self.s.BuiltinOperator, op_type)
        for i, oc in enumerate(self.model.operatorCodes):
            if max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)) == code and oc.version == version:
                return i
        oc = self.s.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, _DEPRECATED_CODE_MAX)
        oc.version = version
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    def make_op(self, op_type: str, version: int, inputs: Sequence[int], outputs: Sequence[int],
                options_type: Optional[str] = None, options: Any = None) -> Any:
        op = self.s.OperatorT()
        op.opcodeIndex = self.opcode_index(op_type, version)
        op.inputs = np.asarray(list(inputs), dtype=np.int32)
        op.outputs = np.asarray(list(outputs), dtype=np.int32)
        if options_type is not None:
            op.builtinOptionsType = getattr(self.s.BuiltinOptions, options_type)
            op.builtinOptions = options
        return op

    def insert_after(self, anchor: Any, op: Any) -> None:
        self.sg.operators.insert(self.position(anchor) + 1, op)

    def replace(self, old: Any, new: Any) -> None:
        self.sg.operators[self.position(old)] = new


def new_op_version(table: Dict[str, Dict[str, int]], op_type: str, type_name: str) -> int:
    versions = table.get(op_type, {})
    if type_name not in versions:
        raise UsageError(f"cannot add a {op_type} for {type_name} tensors (no known op version)")
    return int(versions[type_name])
