"""Frozen DeepLab graph -> uint8 TFLite model, from the MobileNetV2 input to the ArgMax output.

Three quantization modes (``variants.QUANTIZATION_MODES``):

* ``qat``: the graph comes from a quantization-aware checkpoint and carries FakeQuant nodes; the
  converter takes every range from them.
* ``dummy``: a float graph; every tensor gets the table's default range (``default_ranges_stats``), as
  the seed's cityscapes/ade20k models were made. Cheap, costs accuracy.
* ``calibrated``: a float graph; the graph is run in TensorFlow on representative images, the observed
  min/max of each activation is written into the graph as a FakeQuantWithMinMaxArgs node, and the result
  is converted like a ``qat`` graph. Same uint8 model layout as the other two (no int8 tensors, which
  NNAPI before API 30 cannot take).

All three use ``tf.compat.v1.lite.TFLiteConverter.from_frozen_graph`` with ``inference_type=uint8`` and
``quantized_input_stats = {input: (mean, std)}``. TensorFlow is imported lazily.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.export.variants import QUANTIZATION_MODES, ConverterSettings
from deeplab_nnapi.fileio import read_input
from deeplab_nnapi.native_logs import import_tensorflow

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy")


class ConversionError(CheckFailed):
    """The converter refused the graph (exit 1 for that variant)."""


@dataclass
class ConversionResult:
    model: bytes
    seconds: float
    quantization: str
    tensorflow_version: str
    calibration: Dict[str, object] = field(default_factory=dict)


def _tf():
    try:
        tf = import_tensorflow()
    except ImportError:
        raise UsageError("conversion needs TensorFlow: pip install 'deeplab-nnapi[export]'") from None
    return tf


def read_graph_def(graph: Union[str, Path, bytes]):
    tf = _tf()
    data = graph if isinstance(graph, bytes) else read_input(graph, "a frozen graph file")
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(data)
    except Exception:  # protobuf's DecodeError has no stable import path
        raise UsageError(f"{'graph' if isinstance(graph, bytes) else graph}: not a frozen GraphDef (.pb)") \
            from None
    if not gd.node:
        raise UsageError(f"{'graph' if isinstance(graph, bytes) else graph}: empty GraphDef")
    return gd


def _node_name(ref: str) -> str:
    return ref.lstrip("^").split(":", 1)[0]


def check_arrays(gd, input_array: str, output_array: str) -> None:
    names = {n.name for n in gd.node}
    for what, name in (("input", input_array), ("output", output_array)):
        if _node_name(name) not in names:
            raise UsageError(f"{what} array {name!r} is not a node of the graph")


def convert_frozen_graph(graph: Union[str, Path, bytes], settings: ConverterSettings,
                         input_size: Tuple[int, int], quantization: str,
                         calibration_images: Union[Path, Sequence[np.ndarray], None] = None,
                         max_calibration_images: int = 100,
                         ) -> ConversionResult:
    """Convert a frozen graph (file or serialized GraphDef) to a uint8 TFLite flatbuffer.

    ``calibration_images``: a directory of images (resized to the input), or the inputs themselves
    (HxWx3 uint8 at the input size, e.g. photos prepared by :func:`deeplab_nnapi.images.prepare`)."""
    if quantization not in QUANTIZATION_MODES:
        raise UsageError(f"unknown quantization mode {quantization!r}")
    if quantization == "calibrated" and calibration_images is None:
        raise UsageError("quantization 'calibrated' needs --calibration-images DIR")
    tf = _tf()
    gd = read_graph_def(graph)
    check_arrays(gd, settings.input_array, settings.output_array)
    if quantization == "qat" and not any(n.op.startswith("FakeQuant") for n in gd.node):
        raise ConversionError("quantization 'qat' needs FakeQuant nodes and the graph has none (export a "
                              "quantization-aware checkpoint with --quantize_delay_step=0, or use dummy)")
    h, w = input_size
    start = time.monotonic()
    info: Dict[str, object] = {}
    if quantization == "calibrated":
        if isinstance(calibration_images, (str, Path)):
            images = load_calibration_images(Path(calibration_images), (h, w), max_calibration_images)
        else:
            images = [np.asarray(x, np.uint8) for x in list(calibration_images)[:max_calibration_images]]
            if not images or any(x.shape != (h, w, 3) for x in images):
                raise UsageError(f"calibration inputs must be {h}x{w}x3 uint8 images")
        gd, info = calibrate(gd, settings, images)
    with tempfile.TemporaryDirectory(prefix="deeplab-convert-") as tmp:
        pb = os.path.join(tmp, "graph.pb")
        with open(pb, "wb") as f:
            f.write(gd.SerializeToString())
        inp = _node_name(settings.input_array)
        try:
            conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
                pb, [inp], [_node_name(settings.output_array)], input_shapes={inp: [1, h, w, 3]})
            conv.inference_type = tf.uint8
            conv.quantized_input_stats = {inp: (settings.mean, settings.std)}
            if quantization == "dummy" or (quantization == "qat" and settings.qat_fallback_default_ranges):
                conv.default_ranges_stats = settings.default_ranges
            model = conv.convert()
        except (UsageError, CheckFailed):
            raise
        except Exception as exc:  # the converter raises many types (ConverterError, ValueError, ...)
            text = _one_line(exc)
            if "'tf.Placeholder' op is neither a custom op nor a flex op" in str(exc):
                raise ConversionError(
                    f"the graph from {settings.input_array!r} to {settings.output_array!r} still depends on "
                    f"another placeholder (a shape or value computed before the input array): {text}"
                ) from None
            raise ConversionError(f"converter failed: {text}") from None
    return ConversionResult(model=bytes(model), seconds=time.monotonic() - start, quantization=quantization,
                            tensorflow_version=tf.__version__, calibration=info)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # the converter's messages repeat the MLIR location dump; keep the first useful part
    return (text[:400] + " ...") if len(text) > 400 else (text or type(exc).__name__)


# ----------------------------------------------------------------------------------------------------
# calibration


def load_calibration_images(directory: Path, size: Tuple[int, int], limit: int = 100) -> List[np.ndarray]:
    """Load up to ``limit`` images (PNG/JPEG/BMP/GIF or HxWx3 uint8 ``.npy``), resized to ``size``."""
    if not directory.is_dir():
        raise UsageError(f"--calibration-images: {directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"--calibration-images: no images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    tf = _tf()
    out = []
    for p in files[:limit]:
        try:
            if p.suffix.lower() == ".npy":
                arr = np.load(p)
                if arr.ndim != 3 or arr.shape[-1] != 3:
                    raise ValueError(f"shape {arr.shape} is not HxWx3")
                img = tf.convert_to_tensor(arr.astype(np.uint8))
            else:
                img = tf.io.decode_image(tf.io.read_file(str(p)), channels=3, expand_animations=False)
        except Exception as exc:
            raise UsageError(f"--calibration-images: cannot read {p.name}: {_one_line(exc)}") from None
        img = tf.image.resize(tf.cast(img, tf.float32), size, method="bilinear")
        out.append(np.clip(np.rint(img.numpy()), 0, 255).astype(np.uint8))
    return out


# Ops whose output range is the range of their input (no range of their own needed). The uint8 kernels
# of pools and resizes need the same scale in and out: a range of their own would make the converter add
# a requantizing QUANTIZE op, which NNAPI before API 30 cannot run.
PASS_THROUGH_OPS = {"AvgPool", "MaxPool", "ResizeBilinear", "ResizeNearestNeighbor", "Identity", "Const",
                 "Placeholder", "Shape", "SpaceToBatchND", "Pad", "Reshape", "Squeeze", "ExpandDims",
                 "StopGradient", "NoOp", "ArgMax", "Cast", "Size", "StridedSlice", "Pack"}
# Ops the converter folds into the op before or after them (conv + bias + batch norm + activation):
# a range between them would stop that fusion.
_LINEAR = {"Conv2D", "DepthwiseConv2dNative", "MatMul", "BiasAdd", "FusedBatchNorm", "FusedBatchNormV3",
           "BatchToSpaceND"}
_ARITH = {"Mul", "Add", "AddV2", "Sub"}
_ACTIVATIONS = {"Relu", "Relu6"}


def _range_points(gd, input_array: str, output_array: str) -> List[str]:
    """Nodes between input and output whose output needs its own quantization range."""
    by_name = {n.name: n for n in gd.node}
    consumers: Dict[str, List[str]] = {}
    for n in gd.node:
        for ref in n.input:
            if not ref.startswith("^"):
                consumers.setdefault(_node_name(ref), []).append(n.name)
    start, end = _node_name(input_array), _node_name(output_array)
    # descendants of the input
    below = set()
    todo = [start]
    while todo:
        cur = todo.pop()
        for c in consumers.get(cur, []):
            if c not in below:
                below.add(c)
                todo.append(c)

    def is_const(ref: str) -> bool:
        n = by_name.get(_node_name(ref))
        while n is not None and n.op == "Identity":
            n = by_name.get(_node_name(n.input[0]))
        return n is not None and n.op == "Const"

    def linear(n) -> bool:
        if n.op in _LINEAR:
            return True
        return n.op in _ARITH and any(is_const(i) for i in n.input)  # unfused batch norm: x * s + b

    points = []
    for name in below:
        n = by_name[name]
        if name == end or n.op in PASS_THROUGH_OPS:
            continue
        if linear(n):
            outs = [by_name[c] for c in consumers.get(name, [])]
            if outs and all(linear(o) or o.op in _ACTIVATIONS for o in outs):
                continue
        points.append(name)
    return sorted(points)


def _same_scale_groups(gd, points: Sequence[str]) -> List[List[str]]:
    """Range points that must share one range: a concatenation and the ranges that reach its inputs.

    TFLite's uint8 CONCATENATION takes one scale for all inputs and the output; different calibrated
    ranges would make the converter insert a requantizing QUANTIZE op (not in NNAPI before API 30).
    """
    by_name = {n.name: n for n in gd.node}
    pts = set(points)

    def source(ref: str) -> Optional[str]:
        name = _node_name(ref)
        seen = set()
        while name not in pts:
            n = by_name.get(name)
            if n is None or n.op not in PASS_THROUGH_OPS or not n.input or name in seen:
                return None
            seen.add(name)
            name = _node_name(n.input[0])
        return name

    parent = {p: p for p in pts}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in gd.node:
        if n.op not in ("ConcatV2", "Concat") or n.name not in pts:
            continue
        data = n.input[:-1] if n.op == "ConcatV2" else n.input[1:]
        for ref in data:
            if ref.startswith("^"):
                continue
            s = source(ref)
            if s is not None:
                parent[find(s)] = find(n.name)
    groups: Dict[str, List[str]] = {}
    for p in pts:
        groups.setdefault(find(p), []).append(p)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def calibrate(gd, settings: ConverterSettings, images: Sequence[np.ndarray]):
    """Run the float graph on ``images``; return (graph with FakeQuant ranges, info)."""
    tf = _tf()
    points = _range_points(gd, settings.input_array, settings.output_array)
    inp = _node_name(settings.input_array) + ":0"
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    fetches = {p: g.get_tensor_by_name(p + ":0") for p in points}
    fetches = {p: t for p, t in fetches.items() if t.dtype == tf.float32}
    points = sorted(fetches)
    if not points:
        raise ConversionError("calibration: no float activation between the input and output arrays")
    lo = {p: np.inf for p in points}
    hi = {p: -np.inf for p in points}
    with tf.compat.v1.Session(graph=g) as sess:
        for img in images:
            real = (img.astype(np.float32) - settings.mean) / settings.std
            vals = sess.run(fetches, {inp: real[None]})
            for p, v in vals.items():
                lo[p] = min(lo[p], float(np.min(v)))
                hi[p] = max(hi[p], float(np.max(v)))
    for group in _same_scale_groups(gd, points):
        mn, mx = min(lo[p] for p in group), max(hi[p] for p in group)
        for p in group:
            lo[p], hi[p] = mn, mx
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(gd)
    renames = {}
    for p in points:
        mn, mx = min(lo[p], 0.0), max(hi[p], 0.0)  # the range must hold 0 exactly
        if mx - mn < 1e-6:
            mx = mn + 1e-6
        fq = out.node.add()
        fq.name = p + "/calibration_range"
        fq.op = "FakeQuantWithMinMaxArgs"
        fq.input.append(p)
        fq.attr["min"].f = mn
        fq.attr["max"].f = mx
        fq.attr["num_bits"].i = 8
        fq.attr["narrow_range"].b = False
        renames[p] = fq.name
    for n in out.node:
        if n.op == "FakeQuantWithMinMaxArgs" and n.name.endswith("/calibration_range"):
            continue
        for i, ref in enumerate(n.input):
            if ref.startswith("^"):
                continue
            base, _, port = ref.partition(":")
            if base in renames and port in ("", "0"):
                n.input[i] = renames[base]
    return out, {"images": len(images), "ranges": len(points)}
