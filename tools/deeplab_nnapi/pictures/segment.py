"""Run a segmentation model on photos: label maps at each photo's own size.

The model runs in ai-edge-litert on TFLite's own kernels (no default XNNPACK delegate: the same results on
every CPU). The photo is resized and padded the way DeepLab's export does it (:func:`deeplab_nnapi.images.
prepare`); the label map is cut to the photo's part of the crop and scaled back to the photo's size
(nearest neighbour, :func:`deeplab_nnapi.images.restore_labels`), so it lies exactly over the photo.

Inputs: uint8 with DeepLab's quantization (scale 1/127, zero point 128) takes the pixels as they are, as
the published models do; other uint8/int8 inputs are quantized from MobileNetV2's ``2*p/255 - 1``, float
inputs get that value. Outputs: int32/int64 labels (1xHxW, ArgMax in the model) or per-class scores
(1xHxWxC), reduced with argmax here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fileio import read_input
from deeplab_nnapi.images import Image, prepare, restore_labels

ModelSource = Union[str, Path, bytes, bytearray]


def model_bytes(source: ModelSource) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    return read_input(Path(source), "a .tflite file")


def num_classes_of(data: bytes) -> Optional[int]:
    """The number of classes a DeepLab model tells apart: the channels its ARG_MAX reduces, else the last
    dimension of a 4-D output; None when neither is known."""
    from deeplab_nnapi.nnapi.tflite_model import load_model

    model = load_model(data)
    for op in model.operators:
        if op.op_type == "ARG_MAX" and op.inputs:
            t = model.tensor(op.inputs[0])
            if t is not None and t.shape and t.shape[-1] > 1:
                return int(t.shape[-1])
    for idx in model.outputs:
        t = model.tensor(idx)
        if t is not None and len(t.shape) == 4 and t.shape[-1] > 1:
            return int(t.shape[-1])
    return None


@dataclass
class Segmenter:
    """One model, loaded once, run on many photos."""

    label: str
    data: bytes = field(repr=False)
    _interp: object = field(default=None, repr=False)
    input_size: Tuple[int, int] = (0, 0)
    num_classes: Optional[int] = None

    @classmethod
    def load(cls, source: ModelSource, label: Optional[str] = None) -> Segmenter:
        data = model_bytes(source)
        if label is None:
            label = Path(source).stem if isinstance(source, (str, Path)) else "model"
        try:
            from deeplab_nnapi.native_logs import litert_interpreter_class

            Interpreter, OpResolverType = litert_interpreter_class()
        except ImportError:
            raise UsageError("running models needs ai-edge-litert: "
                             "pip install 'deeplab-nnapi[export]'") from None
        classes = num_classes_of(data)  # also rejects what is not a TFLite model, in one line
        try:
            interp = Interpreter(model_content=data,
                                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            interp.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{label}: ai-edge-litert cannot load the model ({first})") from None
        inputs, outputs = interp.get_input_details(), interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UsageError(f"{label}: {len(inputs)} inputs and {len(outputs)} outputs; a segmentation "
                             "model has one of each")
        shape = [int(v) for v in inputs[0]["shape"]]
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise UsageError(f"{label}: input shape {shape} is not 1xHxWx3")
        oshape = [int(v) for v in outputs[0]["shape"]]
        if len(oshape) not in (3, 4) or oshape[0] != 1:
            raise UsageError(f"{label}: output shape {oshape} is neither 1xHxW labels nor 1xHxWxC scores")
        if len(oshape) == 4 and classes is None:
            classes = oshape[3]
        return cls(label, data, interp, (shape[1], shape[2]), classes)

    def _input(self, pixels: np.ndarray) -> np.ndarray:
        d = self._interp.get_input_details()[0]  # type: ignore[attr-defined]
        dtype = np.dtype(d["dtype"])
        scale, zero = float(d["quantization"][0]), int(d["quantization"][1])
        if dtype == np.uint8 and zero == 128 and abs(scale * 127.0 - 1.0) < 1e-3:
            return pixels[None]  # DeepLab's uint8 input: the pixels themselves (see images.prepare)
        real = pixels.astype(np.float32) * (2.0 / 255.0) - 1.0
        if dtype in (np.dtype(np.uint8), np.dtype(np.int8)) and scale > 0:
            info = np.iinfo(dtype)
            q = np.clip(np.rint(real / scale + zero), info.min, info.max)
            return q.astype(dtype)[None]
        if dtype.kind == "f":
            return real.astype(dtype)[None]
        raise UsageError(f"{self.label}: input type {dtype.name} is not supported (uint8, int8 or float)")

    def labels(self, image: Image) -> np.ndarray:
        """The label map for a photo, HxW int32 at the photo's own size."""
        h, w = self.input_size
        prep = prepare(image.pixels, h, w)
        interp = self._interp
        i = interp.get_input_details()[0]  # type: ignore[attr-defined]
        o = interp.get_output_details()[0]  # type: ignore[attr-defined]
        interp.set_tensor(i["index"], self._input(prep.input))  # type: ignore[attr-defined]
        interp.invoke()  # type: ignore[attr-defined]
        out = np.asarray(interp.get_tensor(o["index"]))[0]  # type: ignore[attr-defined]
        if out.ndim == 3:
            out = np.argmax(out, axis=-1)
        return restore_labels(out, (h, w), prep.valid, image.pixels.shape[:2])


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels on which two label maps of the same photo agree."""
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    return float(np.mean(a == b)) if a.size else 1.0
