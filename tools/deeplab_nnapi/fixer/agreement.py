"""Numeric agreement of a rewritten model with its original, on real images.

Both models run in ai-edge-litert with TFLite's builtin kernels and no default delegate (no XNNPACK): the
same results on every CPU. Each image is made into the model's input the way DeepLab does it
(:func:`deeplab_nnapi.images.prepare`: aspect kept, padded to the crop). Outputs are matched by position:
integer outputs without quantization are labels (agreement = share of equal values; int64 against int32
compares values), the others are dequantized and compared by the largest absolute difference.

:func:`label_maps` gives the per-image label maps of both models (for overlays); ``compare(...,
keep_labels=True)`` keeps them from the agreement run itself, so pictures need no second run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.images import Image, Prepared, prepare, restore_labels
from deeplab_nnapi.native_logs import litert_interpreter_class


@dataclass
class OutputAgreement:
    index: int
    name: str
    kind: str  # "labels" | "values"
    dtype_in: str
    dtype_out: str
    elements: int = 0
    equal: int = 0
    max_abs_diff: float = 0.0

    @property
    def percent(self) -> float:
        return 100.0 * self.equal / self.elements if self.elements else 100.0

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"index": self.index, "name": self.name, "kind": self.kind,
                               "dtype_in": self.dtype_in, "dtype_out": self.dtype_out,
                               "elements": self.elements, "equal": self.equal,
                               "agreement_percent": round(self.percent, 4)}
        if self.kind == "values":
            out["max_abs_diff"] = self.max_abs_diff
        return out


@dataclass(frozen=True)
class LabelMaps:
    """One image's label maps from both models, for pictures (overlays)."""

    name: str
    photo: np.ndarray  # the resized photo (valid region of the input)
    valid: Tuple[int, int]  # (height, width) of the photo inside the model input
    labels_in: np.ndarray  # HxW labels of IN
    labels_out: np.ndarray  # HxW labels of OUT
    crop: Tuple[int, int] = (0, 0)  # (height, width) of the model input
    size: Tuple[int, int] = (0, 0)  # (height, width) of the photo itself

    def at_photo_size(self) -> Tuple[np.ndarray, np.ndarray]:
        """Both label maps cut to the photo's part of the crop and scaled back to the photo's size (nearest
        neighbour), as the overlays draw them."""
        return (restore_labels(self.labels_in, self.crop, self.valid, self.size),
                restore_labels(self.labels_out, self.crop, self.valid, self.size))


@dataclass
class Agreement:
    images: List[str] = field(default_factory=list)
    outputs: List[OutputAgreement] = field(default_factory=list)
    label_maps: List[LabelMaps] = field(default_factory=list, repr=False)  # with compare(keep_labels=True)

    @property
    def label_percent(self) -> Optional[float]:
        """The lowest agreement of the label outputs (None when there is none)."""
        labels = [o.percent for o in self.outputs if o.kind == "labels"]
        return min(labels) if labels else None

    @property
    def max_abs_diff(self) -> Optional[float]:
        values = [o.max_abs_diff for o in self.outputs if o.kind == "values"]
        return max(values) if values else None

    def to_json(self) -> Dict[str, Any]:
        label = self.label_percent
        return {"images": list(self.images), "outputs": [o.to_json() for o in self.outputs],
                "label_agreement_percent": None if label is None else round(label, 4),
                "max_abs_diff": self.max_abs_diff}


class _Runner:
    def __init__(self, model: bytes, what: str) -> None:
        try:
            interpreter, resolver = litert_interpreter_class()
        except ImportError:
            raise UsageError("running models needs ai-edge-litert: pip install 'deeplab-nnapi[fix]'") \
                from None
        try:
            self.interp = interpreter(model_content=model,
                                      experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{what}: ai-edge-litert cannot load it ({first})") from None
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    def input_array(self, image: Image) -> Tuple[np.ndarray, Any]:
        if len(self.inputs) != 1:
            raise UsageError(f"the agreement check needs one image input; the model has {len(self.inputs)}")
        spec = self.inputs[0]
        shape = [int(d) for d in spec["shape"]]
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise UsageError(f"the agreement check needs a 1xHxWx3 image input; the model takes {shape}")
        prepared = prepare(image.pixels, shape[1], shape[2])
        pixels = prepared.input[None]
        dtype = np.dtype(spec["dtype"])
        if dtype == np.uint8:
            arr = pixels
        elif dtype == np.int8:
            arr = (pixels.astype(np.int16) - 128).astype(np.int8)
        elif dtype == np.float32:
            arr = pixels.astype(np.float32) / 127.5 - 1.0  # MobileNet's [-1, 1] input
        else:
            raise UsageError(f"the agreement check cannot feed a {dtype.name} input")
        return arr, prepared

    def run(self, arr: np.ndarray) -> List[np.ndarray]:
        self.interp.set_tensor(self.inputs[0]["index"], arr)
        self.interp.invoke()
        return [self.interp.get_tensor(o["index"]).copy() for o in self.outputs]


def _dequantize(arr: np.ndarray, spec: Dict[str, Any]) -> np.ndarray:
    scale, zero_point = spec.get("quantization", (0.0, 0))
    if scale:
        return (arr.astype(np.float64) - zero_point) * scale
    return arr.astype(np.float64)


def _is_labels(spec: Dict[str, Any]) -> bool:
    scale, _ = spec.get("quantization", (0.0, 0))
    return np.issubdtype(np.dtype(spec["dtype"]), np.integer) and not scale


def _runners(model_in: bytes, model_out: bytes) -> Tuple[_Runner, _Runner]:
    a, b = _Runner(model_in, "IN"), _Runner(model_out, "OUT")
    if len(a.outputs) != len(b.outputs):
        raise UsageError(f"IN has {len(a.outputs)} outputs, OUT {len(b.outputs)}")
    return a, b


def _label_output(a: _Runner, b: _Runner) -> Optional[int]:
    """The first output that is labels in both models, or None."""
    pairs = enumerate(zip(a.outputs, b.outputs))
    return next((k for k, (sa, sb) in pairs if _is_labels(sa) and _is_labels(sb)), None)


def _maps(image: Image, prepared: Prepared, a: _Runner, la: np.ndarray, lb: np.ndarray) -> LabelMaps:
    crop = tuple(int(d) for d in a.inputs[0]["shape"][1:3])
    return LabelMaps(image.name, prepared.photo, prepared.valid, np.squeeze(la, 0), np.squeeze(lb, 0),
                     crop, tuple(image.pixels.shape[:2]))  # type: ignore[arg-type]


def compare(model_in: bytes, model_out: bytes, images: Sequence[Image],
            keep_labels: bool = False) -> Agreement:
    """Run both models on every image and compare their outputs. ``keep_labels``: also keep each image's
    label maps of the first label output (``Agreement.label_maps``; empty when there is no label output)."""
    a, b = _runners(model_in, model_out)
    result = Agreement([im.name for im in images])
    for k, (sa, sb) in enumerate(zip(a.outputs, b.outputs)):
        kind = "labels" if _is_labels(sa) and _is_labels(sb) else "values"
        result.outputs.append(OutputAgreement(k, sa["name"], kind, np.dtype(sa["dtype"]).name,
                                              np.dtype(sb["dtype"]).name))
    keep = _label_output(a, b) if keep_labels else None
    for image in images:
        arr, prepared = a.input_array(image)
        outs_a, outs_b = a.run(arr), b.run(arr)
        for k, (xa, xb) in enumerate(zip(outs_a, outs_b)):
            o = result.outputs[k]
            if xa.shape != xb.shape:
                raise UsageError(f"output {k} ({o.name}): IN gives {xa.shape}, OUT {xb.shape}")
            o.elements += xa.size
            if o.kind == "labels":
                o.equal += int(np.count_nonzero(xa.astype(np.int64) == xb.astype(np.int64)))
            else:
                da, db = _dequantize(xa, a.outputs[k]), _dequantize(xb, b.outputs[k])
                o.equal += int(np.count_nonzero(da == db))
                o.max_abs_diff = max(o.max_abs_diff, float(np.max(np.abs(da - db))) if da.size else 0.0)
        if keep is not None:
            result.label_maps.append(_maps(image, prepared, a, outs_a[keep], outs_b[keep]))
    return result


def label_maps(model_in: bytes, model_out: bytes, images: Sequence[Image],
               output_index: Optional[int] = None) -> List[LabelMaps]:
    """Per image, the label maps of IN and OUT (the first label output unless ``output_index``)."""
    a, b = _runners(model_in, model_out)
    if output_index is None:
        output_index = _label_output(a, b)
        if output_index is None:
            raise UsageError("the models have no label output (an integer output without quantization)")
    maps = []
    for image in images:
        arr, prepared = a.input_array(image)
        maps.append(_maps(image, prepared, a, a.run(arr)[output_index], b.run(arr)[output_index]))
    return maps
