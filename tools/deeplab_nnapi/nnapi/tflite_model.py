"""Read the parts of a ``.tflite`` flatbuffer that decide NNAPI delegation.

Uses the ``tflite`` package (generated flatbuffers readers for TFLite's schema). Only the graph structure
is read: operator codes, the primary subgraph's operators and tensors (type, shape, quantization scale and
zero point) and, for constant tensors, whether they hold data. Weight bytes are never copied; a constant's
values are read only on request (a few small ones: axis, size, crops).

Corrupt input (missing file, wrong identifier, truncated file, offsets out of range, nonsense counts) is
reported as :class:`~deeplab_nnapi.errors.UsageError` with one line of text.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import flatbuffers
import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fileio import read_input

#: TFLite's schema version (``TFLITE_SCHEMA_VERSION``); the interpreter refuses any other.
SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"

# Flatbuffers offsets are 32-bit; a model above 2 GiB uses external buffers, which we do not need to read.
_MAX_COUNT = 1 << 24


def _enum_names(cls: type) -> Dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


OPERATOR_NAMES: Dict[int, str] = _enum_names(BuiltinOperator)
TENSOR_TYPE_NAMES: Dict[int, str] = _enum_names(TensorType)
OPTIONS_NAMES: Dict[int, str] = _enum_names(BuiltinOptions)
ACTIVATION_NAMES: Dict[int, str] = _enum_names(ActivationFunctionType)
PADDING_NAMES: Dict[int, str] = _enum_names(Padding)

_NUMPY_TYPES = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "INT32": np.int32,
    "UINT8": np.uint8,
    "INT64": np.int64,
    "INT16": np.int16,
    "INT8": np.int8,
    "FLOAT64": np.float64,
    "UINT32": np.uint32,
    "UINT16": np.uint16,
    "BOOL": np.bool_,
    "UINT64": np.uint64,
}


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    type: str  # TensorType name: "FLOAT32", "UINT8", "INT8", "INT32", "INT64", ...
    shape: Tuple[int, ...]
    buffer: int
    has_data: bool  # a constant with data in the model (TFLite: kTfLiteMmapRo)
    scale: Optional[float]  # first (or only) quantization scale
    zero_point: Optional[int]
    num_scales: int  # > 1: per-channel quantization
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.has_data and not self.is_variable

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    op_type: str  # BuiltinOperator name, e.g. "CONV_2D"; "CUSTOM" for custom ops
    version: int
    inputs: Tuple[int, ...]  # tensor indices; -1 = optional input omitted
    outputs: Tuple[int, ...]
    options: Dict[str, Any] = field(default_factory=dict, compare=False)
    custom_code: Optional[str] = None


@dataclass
class TFLiteModel:
    """The primary subgraph of a TFLite model, as the NNAPI delegate sees it."""

    tensors: List[TensorInfo]
    operators: List[OperatorInfo]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    num_subgraphs: int = 1
    source: str = "<bytes>"
    _data: Any = field(default=None, repr=False, compare=False)
    _buffers: Any = field(default=None, repr=False, compare=False)

    def tensor(self, index: int) -> Optional[TensorInfo]:
        if 0 <= index < len(self.tensors):
            return self.tensors[index]
        return None

    def constant_values(self, index: int, max_elements: int = 64) -> Optional[np.ndarray]:
        """The values of a small constant tensor, or None (not constant, too large, unreadable)."""
        t = self.tensor(index)
        if t is None or not t.is_constant or t.type not in _NUMPY_TYPES:
            return None
        dtype = np.dtype(_NUMPY_TYPES[t.type])
        try:
            buf = self._buffers(t.buffer)
            start, length = _vector_span(self._data, buf._tab, 4)
        except (UsageError, struct.error, IndexError, ValueError):
            return None
        count = length // dtype.itemsize
        if count == 0 or count > max_elements:
            return None
        return np.frombuffer(self._data, dtype=dtype.newbyteorder("<"), count=count, offset=start)


def _bad(source: str, what: str) -> UsageError:
    return UsageError(f"{source}: not a valid TensorFlow Lite model ({what})")


def _vector_span(data: bytes, tab: Any, slot: int) -> Tuple[int, int]:
    """(start, byte length) of the byte vector in field ``slot`` of ``tab``, bounds-checked."""
    o = tab.Offset(slot)
    if o == 0:
        return 0, 0
    start = tab.Vector(o)
    length = tab.VectorLen(o)
    if start < 0 or start + length > len(data):
        raise UsageError("vector out of range")
    return start, length


def _check_vector(data: bytes, tab: Any, slot: int, elem_size: int) -> int:
    """Length of the vector in ``slot``, after checking that it lies inside the file."""
    o = tab.Offset(slot)
    if o == 0:
        return 0
    start = tab.Vector(o)
    n = tab.VectorLen(o)
    if n > _MAX_COUNT or start < 0 or start + n * elem_size > len(data):
        raise UsageError("vector out of range")
    return n


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@cache
def _option_fields(options_name: str) -> Tuple[type, Tuple[Tuple[str, str, str], ...]]:
    """The options class and its readable fields: (method, key, kind) with kind "scalar" or "vector"."""
    cls = getattr(getattr(tflite, options_name, None), options_name, None) or getattr(tflite, options_name)
    fields_: List[Tuple[str, str, str]] = []
    names = set(dir(cls))
    for attr in sorted(names):
        if attr.startswith("_") or attr in ("Init",) or attr.startswith("GetRootAs"):
            continue
        if attr.endswith(("Length", "IsNone", "AsNumpy", "BufferHasIdentifier")):
            continue
        if attr + "AsNumpy" in names:
            fields_.append((attr + "AsNumpy", _snake(attr), "vector"))
        elif attr + "Length" in names:
            continue  # vector of tables/strings: not needed
        else:
            fields_.append((attr, _snake(attr), "scalar"))
    return cls, tuple(fields_)


def _read_options(op: Any) -> Dict[str, Any]:
    otype = op.BuiltinOptionsType()
    if otype == 0:
        return {}
    name = OPTIONS_NAMES.get(otype)
    if name is None:
        return {}
    table = op.BuiltinOptions()
    if table is None:
        return {}
    try:
        cls, fields_ = _option_fields(name)
    except AttributeError:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    result: Dict[str, Any] = {}
    for method, key, kind in fields_:
        value = getattr(obj, method)()
        if kind == "vector":
            value = [] if isinstance(value, int) else [int(v) for v in value[:_MAX_COUNT]]
        elif isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8", "replace")
        elif key == "fused_activation_function":
            value = ACTIVATION_NAMES.get(value, str(value))
        elif key == "padding" and isinstance(value, int):
            value = PADDING_NAMES.get(value, str(value))
        elif key in ("output_type", "idx_out_type", "in_data_type", "out_data_type") and isinstance(
            value, int
        ):
            value = TENSOR_TYPE_NAMES.get(value, str(value))
        result[key] = value
    return result


def load_model(
    model: Union[str, Path, bytes, bytearray, memoryview], source: Optional[str] = None
) -> TFLiteModel:
    """Parse a model from a path or from bytes. Raises UsageError on anything that is not a valid model."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        source = source or "<bytes>"
    else:
        path = Path(model)
        source = source or str(path)
        data = read_input(path, "a .tflite file", source)
    try:
        return _parse(data, source)
    except UsageError as exc:
        msg = str(exc)
        if msg.startswith(source):
            raise
        raise _bad(source, msg) from None
    except (
        struct.error,
        IndexError,
        ValueError,
        TypeError,
        OverflowError,
        UnicodeDecodeError,
        AttributeError,
        KeyError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise _bad(source, f"unreadable flatbuffer: {type(exc).__name__}") from None


def _parse(data: bytes, source: str) -> TFLiteModel:
    size = len(data)
    if size == 0:
        raise _bad(source, "empty file")
    if size < 16:
        raise _bad(source, f"only {size} bytes")
    if not flatbuffers.util.BufferHasIdentifier(data, 0, FILE_IDENTIFIER):
        raise _bad(source, f"file identifier is {data[4:8]!r}, expected {FILE_IDENTIFIER!r}")
    root = struct.unpack_from("<I", data, 0)[0]
    if root < 8 or root + 4 > size:
        raise _bad(source, "root offset out of range")
    m = tflite.Model.GetRootAs(data, 0)
    _check_table(data, m._tab)
    version = m.Version()
    if version != SCHEMA_VERSION:
        raise _bad(source, f"schema version {version}, expected {SCHEMA_VERSION}")

    n_codes = _check_vector(data, m._tab, 6, 4)
    codes: List[Tuple[str, int, Optional[str]]] = []
    for i in range(n_codes):
        oc = m.OperatorCodes(i)
        _check_table(data, oc._tab)
        # TFLite's GetBuiltinCode: max(builtin_code, deprecated_builtin_code), read raw (the tflite
        # package's BuiltinCode() returns the deprecated field whenever builtin_code < 127).
        raw = oc._tab.Offset(10)
        builtin = int(oc._tab.Get(flatbuffers.number_types.Int32Flags, raw + oc._tab.Pos)) if raw else 0
        code = max(builtin, int(oc.DeprecatedBuiltinCode()))
        if not 0 <= code <= MAX_BUILTIN_CODE:
            raise _bad(source, f"operator code {i}: builtin_code out of range: {code}")
        name = OPERATOR_NAMES.get(code, f"BUILTIN_{code}")
        custom = None
        if name == "CUSTOM":
            raw = oc.CustomCode()
            custom = raw.decode("utf-8", "replace") if raw else ""
        version = int(oc.Version())
        if name != "CUSTOM" and not 1 <= version <= MAX_OP_VERSION:
            # No release registers such a version: TFLite's resolver finds no kernel ("Didn't find op").
            raise _bad(source, f"operator code {i}: {name} version {version} is not a version of that op")
        codes.append((name, version, custom))

    n_sub = _check_vector(data, m._tab, 8, 4)
    if n_sub == 0:
        raise _bad(source, "no subgraph")
    if not m._tab.Offset(12):
        raise _bad(source, "no buffers in the model")  # TFLite's InterpreterBuilder refuses it too
    n_buffers = _check_vector(data, m._tab, 12, 4)
    buffers_has_data: List[Optional[bool]] = [None] * n_buffers

    def buffer_table(b: int) -> Any:
        buf = m.Buffers(b)
        _check_table(data, buf._tab)
        return buf

    def has_data(b: int) -> bool:
        if b <= 0 or b >= n_buffers:
            return False
        cached = buffers_has_data[b]
        if cached is None:
            buf = buffer_table(b)
            _, length = _vector_span(data, buf._tab, 4)
            # Models above 2 GiB keep constants outside the flatbuffer: offset/size fields.
            ext = buf.Offset() > 1 and buf.Size() > 0 if hasattr(buf, "Offset") else False
            cached = length > 0 or bool(ext)
            buffers_has_data[b] = cached
        return cached

    sg = m.Subgraphs(0)
    _check_table(data, sg._tab)
    n_tensors = _check_vector(data, sg._tab, 4, 4)
    tensors: List[TensorInfo] = []
    for i in range(n_tensors):
        t = sg.Tensors(i)
        _check_table(data, t._tab)
        ttype = TENSOR_TYPE_NAMES.get(t.Type())
        if ttype is None:
            raise _bad(source, f"tensor {i} has unknown type {t.Type()}")
        n_shape = _check_vector(data, t._tab, 4, 4)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if n_shape else ()
        name_off = t._tab.Offset(10)
        name = ""
        if name_off:
            start = t._tab.Vector(name_off)
            n = t._tab.VectorLen(name_off)
            if start < 0 or start + n > size:
                raise _bad(source, f"tensor {i} name out of range")
            name = data[start : start + n].decode("utf-8", "replace")
        b = int(t.Buffer())
        if b >= n_buffers and n_buffers:
            raise _bad(source, f"tensor {i} refers to buffer {b} of {n_buffers}")
        scale: Optional[float] = None
        zero_point: Optional[int] = None
        num_scales = 0
        q = t.Quantization()
        if q is not None:
            _check_table(data, q._tab)
            num_scales = _check_vector(data, q._tab, 8, 4)
            n_zp = _check_vector(data, q._tab, 10, 8)
            if num_scales and n_zp != num_scales:  # InterpreterBuilder::ParseQuantization
                raise _bad(source, f"tensor {i}: {n_zp} zero points for {num_scales} scales")
            if num_scales:
                scale = float(q.Scale(0))
            if n_zp:
                zero_point = int(q.ZeroPoint(0))
        constant = has_data(b)
        _check_size(source, i, ttype, shape, buffer_table(b) if constant else None, data)
        tensors.append(
            TensorInfo(
                i, name, ttype, shape, b, constant, scale, zero_point, num_scales, bool(t.IsVariable())
            )
        )

    def tensor_list(arr: Any, what: str) -> Tuple[int, ...]:
        if isinstance(arr, int):
            return ()
        out = tuple(int(x) for x in arr)
        for x in out:
            if x < -1 or x >= n_tensors:
                raise _bad(source, f"{what} refers to tensor {x} of {n_tensors}")
        return out

    n_ops = _check_vector(data, sg._tab, 10, 4)
    operators: List[OperatorInfo] = []
    for i in range(n_ops):
        op = sg.Operators(i)
        _check_table(data, op._tab)
        ci = int(op.OpcodeIndex())
        if ci >= n_codes:
            raise _bad(source, f"operator {i} uses opcode {ci} of {n_codes}")
        name, version, custom = codes[ci]
        _check_vector(data, op._tab, 6, 4)
        _check_vector(data, op._tab, 8, 4)
        inputs = tensor_list(op.InputsAsNumpy(), f"operator {i} input")
        outputs = tensor_list(op.OutputsAsNumpy(), f"operator {i} output")
        options = _read_options(op)
        operators.append(OperatorInfo(i, name, version, inputs, outputs, options, custom))

    _check_vector(data, sg._tab, 6, 4)
    _check_vector(data, sg._tab, 8, 4)
    inputs = tensor_list(sg.InputsAsNumpy(), "subgraph input")
    outputs = tensor_list(sg.OutputsAsNumpy(), "subgraph output")
    # A file cut short loses its constants first (the converter writes them last): check every buffer.
    for b in range(1, n_buffers):
        has_data(b)
    return TFLiteModel(tensors, operators, inputs, outputs, n_sub, source, data, buffer_table)


#: Bytes per element, for TFLite's size checks (BytesRequired; strings and variants have none).
_ITEM_SIZE = {"FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "FLOAT64": 8, "INT32": 4, "UINT32": 4, "UINT8": 1,
              "INT8": 1, "INT64": 8, "UINT64": 8, "INT16": 2, "UINT16": 2, "BOOL": 1, "COMPLEX64": 8,
              "COMPLEX128": 16}
#: TFLite refuses an operator code outside BuiltinOperator's range; newer releases add codes, so only what
#: no release can have is refused here.
MAX_BUILTIN_CODE = 0xFFFF
#: Op versions beyond any release's (the highest today is in the low tens); the probe registers 1..64 too.
MAX_OP_VERSION = 64


def _check_size(source: str, i: int, ttype: str, shape: Tuple[int, ...], buf: Any, data: bytes) -> None:
    """TFLite's checks when it sets a tensor up (util.cc BytesRequired, Subgraph::SetTensorParameters*): the
    byte size must not overflow, and a constant's buffer must hold it."""
    item = _ITEM_SIZE.get(ttype)
    if item is None:
        return
    if any(int(d) < 0 for d in shape):  # size_t arithmetic: TFLite's BytesRequired overflows
        raise _bad(source, f"tensor {i}: negative dimension in shape {list(shape)}")
    count = 1
    for d in shape:
        count *= int(d)
    if count * item >= 1 << 63:
        raise _bad(source, f"tensor {i}: shape {list(shape)} overflows its byte size")
    if buf is not None and int(getattr(buf, "Offset", lambda: 0)()) <= 1:
        _, length = _vector_span(data, buf._tab, 4)
        if length < count * item:
            raise _bad(source, f"tensor {i}: buffer holds {length} bytes, shape {list(shape)} of {ttype} "
                               f"needs {count * item}")


def _check_table(data: bytes, tab: Any) -> None:
    pos = tab.Pos
    if pos < 0 or pos + 4 > len(data):
        raise UsageError("table out of range")
    vt = pos - struct.unpack_from("<i", data, pos)[0]
    if vt < 0 or vt + 4 > len(data):
        raise UsageError("vtable out of range")
    vt_size, obj_size = struct.unpack_from("<HH", data, vt)
    if vt_size < 4 or vt + vt_size > len(data) or pos + obj_size > len(data):
        raise UsageError("table out of range")


def op_summary(model: TFLiteModel, ops: Sequence[int]) -> str:
    """`"[first, last]"`-style range text for op indices, e.g. ``0-60 + 64``."""
    return format_ranges(ops)


def format_ranges(values: Sequence[int]) -> str:
    vals = sorted(set(values))
    parts: List[str] = []
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        parts.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return " + ".join(parts)
