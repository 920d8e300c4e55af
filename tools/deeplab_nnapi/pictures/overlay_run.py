"""Write segmentation overlays for one or more models over a set of photos.

::

    from deeplab_nnapi.pictures import write_overlays
    run = write_overlays([("original", "google.tflite"), ("fixed", fixed_bytes)], None, out_dir)
    run.files, run.agreement()          # PNG paths; pixel agreement of each model with the first

One model: one PNG per photo, the photo's size. Several: per photo one sheet with the models' overlays side
by side (first model left) and the pixel agreement with the first model in the caption. Label maps a
caller already has (``maps=``) are drawn as they are, without running the models again. Every PNG is
rendered in memory first and written atomically; nothing is written if a model or a photo fails.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.images import Image, load_images, sample_images
from deeplab_nnapi.pictures import render
from deeplab_nnapi.pictures.overlay import (
    ClassShare,
    agreement_caption,
    class_shares,
    render_overlay,
    side_by_side,
)
from deeplab_nnapi.pictures.palettes import Palette, choose_palette, from_filename
from deeplab_nnapi.pictures.segment import ModelSource, Segmenter, agreement, model_bytes, num_classes_of
from deeplab_nnapi.pictures.writing import write_files

ModelArg = Union[ModelSource, Tuple[str, ModelSource]]
ImagesArg = Union[None, str, Path, Sequence[Image]]


@dataclass
class OverlayImage:
    """One photo: its overlay file, the classes each model found, the agreement with the first model."""

    image: str
    size: Tuple[int, int]  # (height, width) of the photo
    path: Path
    models: List[str]
    agreement: List[Optional[float]]  # per model; None for the first
    classes: List[List[ClassShare]]  # per model, largest first
    png: bytes = field(repr=False, default=b"")

    def to_json(self) -> dict:
        return {
            "image": self.image,
            "height": self.size[0],
            "width": self.size[1],
            "file": str(self.path),
            "models": list(self.models),
            "agreement": [None if a is None else round(a, 6) for a in self.agreement],
            "classes": [[{"label": s.label, "name": s.name, "fraction": round(s.fraction, 6)} for s in c]
                        for c in self.classes],
        }


@dataclass
class OverlayRun:
    dataset: str
    models: List[str]
    images: List[OverlayImage]
    seconds: float = 0.0

    @property
    def files(self) -> List[Path]:
        return [i.path for i in self.images]

    def agreement(self) -> List[Optional[float]]:
        """Pixel agreement of each model with the first, over all photos (pixel-weighted)."""
        out: List[Optional[float]] = [None]
        for k in range(1, len(self.models)):
            agree = sum((i.agreement[k] or 0.0) * i.size[0] * i.size[1] for i in self.images)
            total = sum(i.size[0] * i.size[1] for i in self.images)
            out.append(agree / total if total else None)
        return out

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "models": list(self.models),
            "agreement": [None if a is None else round(a, 6) for a in self.agreement()],
            "images": [i.to_json() for i in self.images],
            "seconds": round(self.seconds, 3),
        }


def safe_name(text: str) -> str:
    """A label as a file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def resolve_images(images: ImagesArg, limit: Optional[int] = None) -> List[Image]:
    """None: the sample photos; a directory: its images; or the images themselves."""
    if images is None:
        got = sample_images()
    elif isinstance(images, (str, Path)):
        got = load_images(Path(images), limit)
    else:
        got = list(images)
    if not got:
        raise UsageError("no images to draw overlays on")
    return got[:limit] if limit else got


def _models(models: Sequence[ModelArg]) -> List[Tuple[str, ModelSource]]:
    out: List[Tuple[str, ModelSource]] = []
    for m in models:
        if isinstance(m, tuple):
            out.append((str(m[0]), m[1]))
        elif isinstance(m, (str, Path)):
            out.append((Path(m).stem, m))
        else:
            out.append((f"model{len(out) + 1}", m))
    if not out:
        raise UsageError("no models to draw overlays for")
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise UsageError(f"model labels must differ: {', '.join(labels)}")
    return out


def pick_palette(classes: Sequence[Tuple[str, Optional[int]]], sources: Sequence[ModelSource],
                 dataset: Optional[str]) -> Palette:
    """One palette for all models, given each model's (label, number of classes): they must tell the same
    number of classes apart."""
    counts = {n for _, n in classes if n is not None}
    if len(counts) > 1:
        raise UsageError("the models tell different numbers of classes apart: "
                         + ", ".join(f"{label} {n}" for label, n in classes))
    n = counts.pop() if counts else None
    guess = None
    if not dataset:
        names = [Path(src).name for src in sources if isinstance(src, (str, Path))]
        names += [label for label, _ in classes]
        guesses = [g for g in (from_filename(x) for x in names) if g]
        guess = guesses[0] if guesses else None
        if guess and n is not None and len(choose_palette(guess)) != n:
            guess = None  # the name says one dataset, the model's classes another: trust the model
    return choose_palette(dataset or guess, n, None)


def _check_maps(maps: Sequence[Sequence[np.ndarray]], photos: Sequence[Image], n_models: int) -> None:
    if len(maps) != len(photos):
        raise ValueError(f"label maps for {len(maps)} photo(s), but {len(photos)} photo(s) given")
    for photo, per_model in zip(photos, maps):
        shapes = [np.shape(m) for m in per_model]
        if len(shapes) != n_models or any(sh != photo.pixels.shape[:2] for sh in shapes):
            raise ValueError(f"{photo.name}: label maps {shapes}; want {n_models} of the photo's size "
                             f"{photo.pixels.shape[:2]}")


def draw_overlays(models: Sequence[ModelArg], images: ImagesArg = None, dataset: Optional[str] = None,
                  out_dir: Union[str, Path] = ".", suffix: Optional[str] = None,
                  maps: Optional[Sequence[Sequence[np.ndarray]]] = None) -> OverlayRun:
    """Run the models and render every overlay in memory (nothing is written). Files are named
    ``<photo>.<suffix>.png``; the suffix defaults to the model's label (``a_vs_b`` for several), and ""
    gives ``<photo>.png``.

    ``maps``: label maps already computed (e.g. by the fixer's agreement run): per photo, one HxW map per
    model at the photo's own size (:func:`deeplab_nnapi.images.restore_labels`). The models are then not
    run; their bytes only give the number of classes for the palette.
    """
    start = time.monotonic()
    pairs = _models(models)
    photos = resolve_images(images)
    if maps is None:
        segs = [Segmenter.load(src, label) for label, src in pairs]
        classes = [(s.label, s.num_classes) for s in segs]
    else:
        _check_maps(maps, photos, len(pairs))
        classes = [(label, num_classes_of(model_bytes(src))) for label, src in pairs]
    pal = pick_palette(classes, [src for _, src in pairs], dataset)
    out_dir = Path(out_dir)
    labels = [label for label, _ in classes]
    if suffix is None:
        suffix = safe_name(labels[0]) if len(labels) == 1 else "_vs_".join(safe_name(x) for x in labels)
    ext = f".{suffix}.png" if suffix else ".png"
    seen: Dict[str, int] = {}
    results: List[OverlayImage] = []
    for k, photo in enumerate(photos):
        got = [s.labels(photo) for s in segs] if maps is None else [np.asarray(m) for m in maps[k]]
        agree: List[Optional[float]] = [None] + [agreement(got[0], m) for m in got[1:]]
        panels = [render_overlay(photo.pixels, m, pal) for m in got]
        if len(panels) == 1:
            pixels = panels[0]
        else:
            pixels, _ = side_by_side(panels, labels, agreement_caption(labels, agree))
        stem = safe_name(photo.name)
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            stem = f"{stem}-{seen[stem]}"
        results.append(OverlayImage(photo.name, tuple(photo.pixels.shape[:2]),  # type: ignore[arg-type]
                                    out_dir / f"{stem}{ext}", labels, agree,
                                    [class_shares(m, pal) for m in got], render.encode_png(pixels)))
    return OverlayRun(pal.key, labels, results, time.monotonic() - start)


def write_overlays(models: Sequence[ModelArg], images: ImagesArg, out_dir: Union[str, Path],
                   dataset: Optional[str] = None, suffix: Optional[str] = None) -> OverlayRun:
    """Draw the overlays (see the module doc) and write them into ``out_dir`` (created if needed).

    ``models``: paths, bytes, or (label, path-or-bytes) pairs; ``images``: None for the sample photos, a
    directory, or :class:`deeplab_nnapi.images.Image` objects; ``dataset``: a palette name (default: from
    the models' number of classes, then their names).
    """
    run = draw_overlays(models, images, dataset, out_dir, suffix)
    write_files([(i.path, i.png) for i in run.images])
    return run
