"""Write segmentation overlays for one or more models over a set of photos.

::

    from deeplab_nnapi.pictures import write_overlays
    run = write_overlays([("original", "google.tflite"), ("fixed", fixed_bytes)], None, out_dir)
    run.files, run.agreement()          # PNG paths; pixel agreement of each model with the first

One model: one PNG per photo, the photo's size. Several: per photo one sheet with the models' overlays side
by side (first model left) and the pixel agreement with the first model in the caption. Every PNG is
rendered in memory first and written atomically; nothing is written if a model or a photo fails.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

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
from deeplab_nnapi.pictures.segment import ModelSource, Segmenter, agreement
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


def pick_palette(segmenters: Sequence[Segmenter], sources: Sequence[ModelSource],
                 dataset: Optional[str]) -> Palette:
    """One palette for all models: they must tell the same number of classes apart."""
    counts = {s.num_classes for s in segmenters if s.num_classes is not None}
    if len(counts) > 1:
        raise UsageError("the models tell different numbers of classes apart: "
                         + ", ".join(f"{s.label} {s.num_classes}" for s in segmenters))
    n = counts.pop() if counts else None
    guess = None
    if not dataset:
        names = [Path(src).name for src in sources if isinstance(src, (str, Path))]
        names += [s.label for s in segmenters]
        guesses = [g for g in (from_filename(x) for x in names) if g]
        guess = guesses[0] if guesses else None
        if guess and n is not None and len(choose_palette(guess)) != n:
            guess = None  # the name says one dataset, the model's classes another: trust the model
    return choose_palette(dataset or guess, n, None)


def draw_overlays(models: Sequence[ModelArg], images: ImagesArg = None, dataset: Optional[str] = None,
                  out_dir: Union[str, Path] = ".", suffix: Optional[str] = None) -> OverlayRun:
    """Run the models and render every overlay in memory (nothing is written). Files are named
    ``<photo>.<suffix>.png``; the suffix defaults to the model's label (``a_vs_b`` for several), and ""
    gives ``<photo>.png``."""
    start = time.monotonic()
    pairs = _models(models)
    segs = [Segmenter.load(src, label) for label, src in pairs]
    pal = pick_palette(segs, [src for _, src in pairs], dataset)
    photos = resolve_images(images)
    out_dir = Path(out_dir)
    labels = [s.label for s in segs]
    if suffix is None:
        suffix = safe_name(labels[0]) if len(segs) == 1 else "_vs_".join(safe_name(x) for x in labels)
    ext = f".{suffix}.png" if suffix else ".png"
    seen: Dict[str, int] = {}
    results: List[OverlayImage] = []
    for photo in photos:
        maps = [s.labels(photo) for s in segs]
        agree: List[Optional[float]] = [None] + [agreement(maps[0], m) for m in maps[1:]]
        panels = [render_overlay(photo.pixels, m, pal) for m in maps]
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
                                    [class_shares(m, pal) for m in maps], render.encode_png(pixels)))
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
