"""Images to run models on: the sample photos scikit-image ships, or a user's directory, and DeepLab's
input preparation (keep the aspect ratio, pad to the crop) with its inverse for label maps.

Needs the ``images`` extra (Pillow, scikit-image); nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeplab_nnapi.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy")

#: The value DeepLab pads with: its mean pixel 127.5 is 0.0 after MobileNetV2's scaling, which is 128 in the
#: uint8 input of the published models (scale 1/127, zero point 128).
PAD_VALUE = 128


@dataclass(frozen=True)
class Image:
    name: str
    pixels: np.ndarray  # HxWx3 uint8


def _skimage_samples() -> Dict[str, Callable[[], np.ndarray]]:
    try:
        import skimage.data as data
    except ImportError:
        raise UsageError("the sample images need scikit-image: pip install 'deeplab-nnapi[images]'") from None
    return {
        "astronaut": data.astronaut,  # a person (PASCAL: person)
        "chelsea": data.chelsea,  # a cat (PASCAL: cat)
        "motorcycle": lambda: data.stereo_motorcycle()[0],  # a motorbike (PASCAL: motorbike)
        "coffee": data.coffee,  # a cup on a table
        "rocket": data.rocket,  # a rocket on its pad, sky and ground (outdoor scene)
    }


#: The photos scikit-image ships with its wheel (no download): names in a fixed order.
SAMPLE_NAMES: Tuple[str, ...] = ("astronaut", "chelsea", "motorcycle", "coffee", "rocket")


def sample_images(names: Optional[Sequence[str]] = None) -> List[Image]:
    """The sample photos (RGB uint8), in SAMPLE_NAMES order or the order given."""
    loaders = _skimage_samples()
    out = []
    for name in names or SAMPLE_NAMES:
        if name not in loaders:
            raise UsageError(f"unknown sample image {name!r} (known: {', '.join(SAMPLE_NAMES)})")
        out.append(Image(name, _as_rgb(np.asarray(loaders[name]()), name)))
    return out


def _as_rgb(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise UsageError(f"{what}: shape {arr.shape} is not an RGB image (HxWx3)")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def load_image(path: Path) -> Image:
    """One image file (PNG/JPEG/BMP/GIF, or an HxWx3 ``.npy``) as RGB uint8."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            try:
                from PIL import Image as PILImage
            except ImportError:
                raise UsageError("reading images needs Pillow: pip install 'deeplab-nnapi[images]'") from None
            with PILImage.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
    except UsageError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: cannot read image ({detail})") from None
    return Image(path.stem, _as_rgb(arr, str(path)))


def load_images(directory: Path, limit: Optional[int] = None, option: str = "--images") -> List[Image]:
    """Every image in ``directory`` (sorted by name), at most ``limit``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{option}: {directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{option}: no images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    return [load_image(p) for p in files[:limit]]


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an HxWx3 uint8 image (Pillow)."""
    from PIL import Image as PILImage

    if pixels.shape[:2] == (height, width):
        return pixels
    im = PILImage.fromarray(pixels).resize((width, height), PILImage.BILINEAR)
    return np.asarray(im)


@dataclass(frozen=True)
class Prepared:
    """A photo made into a model input the way DeepLab's export does it."""

    input: np.ndarray  # HxWx3 uint8, the crop size
    valid: Tuple[int, int]  # (height, width) of the photo inside the crop, top-left aligned
    photo: np.ndarray  # the resized photo itself (valid[0] x valid[1] x 3)


def prepare(pixels: np.ndarray, height: int, width: int) -> Prepared:
    """Resize so the photo fits the crop with its aspect ratio kept (DeepLab resizes the longer side to the
    crop), then pad bottom/right with PAD_VALUE. The uint8 pixels are the model's input as they are: with
    scale 1/127 and zero point 128 they stand for MobileNetV2's ``2*p/255 - 1`` to within 1/255."""
    h, w = pixels.shape[:2]
    scale = min(height / h, width / w)
    nh, nw = max(1, min(height, int(round(h * scale)))), max(1, min(width, int(round(w * scale))))
    photo = resize(pixels, nh, nw)
    out = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    out[:nh, :nw] = photo
    return Prepared(out, (nh, nw), photo)


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an HxW label map (pixel centres mapped onto the source grid)."""
    h, w = labels.shape
    if (h, w) == (height, width):
        return labels
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.intp)
    return labels[rows[:, None], cols[None, :]]


def restore_labels(labels: np.ndarray, crop: Tuple[int, int], valid: Tuple[int, int],
                   size: Tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`prepare` for a model's HxW label map: brought to the crop if the model gives a
    lower resolution, cut to the photo's part (``valid``), scaled back to the photo's ``size`` (nearest
    neighbour), as int32. The result lies exactly over the photo."""
    out = np.asarray(labels).astype(np.int32)
    if out.shape != tuple(crop):
        out = resize_labels(out, *crop)
    vh, vw = valid
    return resize_labels(out[:vh, :vw], *size)
