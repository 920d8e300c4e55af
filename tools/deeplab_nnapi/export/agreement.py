"""Label agreement of an exported uint8 model with the float graph of the same weights, on photos.

The float graph is the frozen DeepLab graph before quantization (the real code, built by the graph
builder); it runs in TensorFlow from the MobileNetV2 input to ``ArgMax``. The uint8 model runs in
ai-edge-litert with TFLite's reference kernels (no XNNPACK: the same labels on every CPU). Each photo is
made into the input the way DeepLab does it (:func:`deeplab_nnapi.images.prepare`: aspect ratio kept,
padded with the mean pixel); the float graph gets the same pixels as the uint8 model sees them,
``(q - mean) / std``. Agreement is the share of equal labels over the whole crop of every photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeplab_nnapi.errors import UsageError


@dataclass
class LabelAgreement:
    what: str  # e.g. "float graph", "source model"
    images: List[str] = field(default_factory=list)
    per_image: List[float] = field(default_factory=list)  # percent equal, per photo
    pixels: int = 0
    equal: int = 0
    classes: List[int] = field(default_factory=list)  # classes the model under test gives, all photos

    @property
    def percent(self) -> float:
        return 100.0 * self.equal / self.pixels if self.pixels else 100.0

    def add(self, name: str, a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape:
            raise UsageError(f"{name}: label maps of shape {a.shape} and {b.shape}")
        n = int(np.count_nonzero(a.astype(np.int64) == b.astype(np.int64)))
        self.images.append(name)
        self.per_image.append(round(100.0 * n / a.size, 3) if a.size else 100.0)
        self.pixels += int(a.size)
        self.equal += n
        self.classes = sorted(set(self.classes) | {int(x) for x in np.unique(a)})

    def to_json(self) -> Dict[str, object]:
        return {"against": self.what, "agreement_percent": round(self.percent, 3), "images": self.images,
                "per_image_percent": self.per_image, "pixels": self.pixels, "classes_seen": self.classes}


def photo_inputs(size: Tuple[int, int], images_dir: Optional[Path] = None) -> List[Tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8 input) per photo of ``images_dir`` (default: the sample photos), prepared for a
    crop of ``size`` (height, width)."""
    from deeplab_nnapi.images import load_images, prepare, sample_images

    photos = load_images(images_dir) if images_dir is not None else sample_images()
    return [(p.name, prepare(p.pixels, size[0], size[1]).input) for p in photos]


def model_labels(model: bytes, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The labels a uint8 TFLite model gives for each HxWx3 uint8 input (reference kernels)."""
    from deeplab_nnapi.export.verify import run_model

    return [np.squeeze(run_model(model, x[None])[0], 0) for x in inputs]


def float_labels(graph: Union[str, Path, bytes], inputs: Sequence[np.ndarray], *, input_array: str,
                 output_array: str, mean: float, std: float) -> List[np.ndarray]:
    """The labels the float frozen graph gives for each HxWx3 uint8 input, fed to ``input_array`` as
    ``(q - mean) / std`` (what the uint8 input stands for)."""
    from deeplab_nnapi.export.convert import read_graph_def
    from deeplab_nnapi.native_logs import import_tensorflow

    tf = import_tensorflow()
    gd = read_graph_def(graph)
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    feed = input_array if ":" in input_array else input_array + ":0"
    fetch = output_array if ":" in output_array else output_array + ":0"
    out = []
    with tf.compat.v1.Session(graph=g) as sess:
        for x in inputs:
            real = (x.astype(np.float32) - np.float32(mean)) / np.float32(std)
            out.append(np.squeeze(sess.run(fetch, {feed: real[None]}), 0))
    return out


def agreement(what: str, names: Sequence[str], a: Sequence[np.ndarray], b: Sequence[np.ndarray]
              ) -> LabelAgreement:
    """How often the label maps ``a`` (the model under test) equal ``b``."""
    result = LabelAgreement(what)
    for name, x, y in zip(names, a, b):
        result.add(name, x, y)
    return result
