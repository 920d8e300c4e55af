"""Read a ``.tflite`` into TFLite's schema object API and write it back, without TensorFlow.

The object API is ``schema_py_generated`` as ai-edge-litert ships it: flatc's Python classes for TFLite's
own ``schema.fbs`` generated with ``--gen-object-api`` (``ModelT``, ``OperatorT``, ``TensorT``, ... with
``InitFromPackedBuf`` and ``Pack``), the same module TensorFlow's ``flatbuffer_utils`` uses, kept in step
with the runtime that runs the models. The ``tflite`` wheel the predictor reads with has no object API
(readers only), and TensorFlow is far too heavy a dependency for rewriting a 2 MB file.

Everything the schema knows survives a read/write: buffers (bytes as they were), metadata (including
``min_runtime_version`` and TFLite Support metadata), signature defs, every subgraph, descriptions. Constant
buffers are written 16-byte aligned, as TFLite's converter writes them. Models over 2 GB (constants stored
after the flatbuffer, ``Buffer.offset``) are refused: rewriting would move what those offsets point at.
"""

from __future__ import annotations

from typing import Any, Optional

import flatbuffers
import numpy as np

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.tflite_model import FILE_IDENTIFIER, TFLiteModel, load_model

#: TFLite's converter aligns constant buffers to 16 bytes (kTfLiteMinimumBufferAlignment): SIMD loads of
#: weights, and mmap'd int32/float data, rely on it.
BUFFER_ALIGNMENT = 16

MIN_RUNTIME_VERSION = b"min_runtime_version"


def schema() -> Any:
    """The generated schema module (object API)."""
    try:
        from ai_edge_litert import schema_py_generated as s
    except ImportError:
        raise UsageError(
            "fixing models needs ai-edge-litert (TFLite's schema object API): "
            "pip install 'deeplab-nnapi[fix]'"
        ) from None
    return s


def _aligned_buffer_class(s: Any) -> type:
    class AlignedBufferT(s.BufferT):
        """BufferT whose data vector starts on a 16-byte boundary (the generated Pack aligns to 1)."""

        def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - the generated API's name
            data = None
            if self.data is not None:
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.Prep(BUFFER_ALIGNMENT, len(raw))
                data = builder.CreateByteVector(raw)
            s.BufferStart(builder)
            if data is not None:
                s.BufferAddData(builder, data)
            s.BufferAddOffset(builder, self.offset)
            s.BufferAddSize(builder, self.size)
            return s.BufferEnd(builder)

    return AlignedBufferT


def read_model(data: bytes, source: str = "<bytes>") -> Any:
    """The model as a ``ModelT``. The bytes are first checked by the predictor's reader (UsageError with
    one line for anything that is not a valid TFLite model)."""
    load_model(data, source)
    s = schema()
    try:
        model = s.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # the reader already bounds-checked the graph; this is the rest of the file
        raise UsageError(f"{source}: not a valid TensorFlow Lite model ({type(exc).__name__})") from None
    for i, buf in enumerate(model.buffers or []):
        if buf.offset > 1 or buf.size:
            raise UsageError(
                f"{source}: buffer {i} is stored outside the flatbuffer (a model over 2 GB); not supported"
            )
    return model


def write_model(model: Any, size_hint: int = 1 << 20) -> bytes:
    """Serialize a ``ModelT`` with the ``TFL3`` identifier and 16-byte aligned buffers."""
    s = schema()
    aligned = _aligned_buffer_class(s)
    originals = model.buffers
    model.buffers = [aligned(b.data, b.offset, b.size) for b in originals or []] if originals else originals
    try:
        builder = flatbuffers.Builder(size_hint + 4096)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())
    finally:
        model.buffers = originals


def reparse(data: bytes, source: str = "<rewritten>") -> TFLiteModel:
    """The predictor's view of written bytes (raises UsageError if the writer produced nonsense)."""
    return load_model(data, source)


def min_runtime_version(model: Any) -> Optional[str]:
    """The ``min_runtime_version`` metadata string, if the model has one."""
    for md in model.metadata or []:
        if md.name == MIN_RUNTIME_VERSION and 0 <= md.buffer < len(model.buffers):
            data = model.buffers[md.buffer].data
            if data is not None:
                return bytes(np.asarray(data, dtype=np.uint8)).rstrip(b"\0").decode("ascii", "replace")
    return None


def set_min_runtime_version(model: Any, version: str) -> None:
    """Write ``version`` into the ``min_runtime_version`` metadata buffer, NUL-padded to the length the
    converter left (it pads to 16 bytes so the string can be raised in place)."""
    for md in model.metadata or []:
        if md.name == MIN_RUNTIME_VERSION and 0 <= md.buffer < len(model.buffers):
            old = model.buffers[md.buffer].data
            width = max(len(old) if old is not None else 0, len(version))
            padded = version.encode("ascii").ljust(width, b"\0")
            model.buffers[md.buffer].data = np.frombuffer(padded, np.uint8)
            return
