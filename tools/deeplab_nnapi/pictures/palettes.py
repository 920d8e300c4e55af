"""Class names and colours per dataset (``data/palettes.toml``): PASCAL VOC 2012 (21), Cityscapes (19),
ADE20K (151), and which dataset a model was trained on.

A model's dataset is known, in this order, from what the caller says (``--dataset``, an export manifest's
``dataset``), from its number of classes (the channels ARG_MAX reduces: 21, 19, 151), or from its file
name. A model with another number of classes gets a generic palette ("class 0", "class 1", ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from deeplab_nnapi.errors import UsageError

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

PALETTES_PATH = Path(__file__).resolve().parents[1] / "data" / "palettes.toml"


@dataclass(frozen=True)
class Palette:
    key: str  # "pascal_voc_2012", "cityscapes", "ade20k" or "generic"
    title: str
    names: Tuple[str, ...]
    colors: np.ndarray  # (N, 3) uint8, row i = colour of label i
    background: Optional[int] = None  # the label overlays leave untinted

    def __len__(self) -> int:
        return len(self.names)

    def name(self, label: int) -> str:
        return self.names[label] if 0 <= label < len(self.names) else f"label {label}"

    def color(self, label: int) -> Tuple[int, int, int]:
        """Colour of a label; labels outside the palette are black (they should not occur)."""
        if 0 <= label < len(self.colors):
            r, g, b = (int(v) for v in self.colors[label])
            return r, g, b
        return 0, 0, 0

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """HxW labels -> HxWx3 uint8 colours."""
        lut = np.zeros((max(len(self.colors), int(labels.max(initial=0)) + 1), 3), dtype=np.uint8)
        lut[: len(self.colors)] = self.colors
        return lut[np.clip(labels, 0, len(lut) - 1)]


def pascal_colormap(n: int) -> np.ndarray:
    """The PASCAL VOC devkit's colormap: bit k of each of the label's 3-bit groups goes to bit 7-k of R, G, B
    (label 1 = (128, 0, 0), 2 = (0, 128, 0), 15 = (192, 128, 128), ...)."""
    labels = np.arange(n)
    cmap = np.zeros((n, 3), dtype=np.int64)
    ind = labels.copy()
    for shift in range(7, -1, -1):
        for channel in range(3):
            cmap[:, channel] |= ((ind >> channel) & 1) << shift
        ind >>= 3
    return cmap.astype(np.uint8)


@lru_cache(maxsize=2)
def load_palettes(path: Optional[Path] = None) -> Dict[str, Palette]:
    p = Path(path) if path else PALETTES_PATH
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{p}: cannot read the palette table ({exc})") from None
    out: Dict[str, Palette] = {}
    for key, entry in raw.items():
        classes = entry.get("classes", [])
        if entry.get("colormap") == "pascal":
            names = tuple(str(c) for c in classes)
            colors = pascal_colormap(len(names))
        else:
            names = tuple(str(c[0]) for c in classes)
            colors = np.array([c[1] for c in classes], dtype=np.int64)
            if colors.shape != (len(names), 3) or colors.min() < 0 or colors.max() > 255:
                raise UsageError(f"{p}: [{key}] colours must be [r, g, b] in 0..255")
            colors = colors.astype(np.uint8)
        out[key] = Palette(key, str(entry.get("title", key)), names, colors, entry.get("background"))
    return out


@lru_cache(maxsize=2)
def _aliases(path: Optional[Path] = None) -> Dict[str, str]:
    """Normalised key or alias -> dataset key."""
    p = Path(path) if path else PALETTES_PATH
    load_palettes(path)  # a broken table is reported there
    raw = tomllib.loads(p.read_text(encoding="utf-8"))
    table = {}
    for key, entry in raw.items():
        table[_norm(key)] = key
        for alias in entry.get("aliases", []):
            table[_norm(alias)] = key
    return table


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def dataset_names() -> Tuple[str, ...]:
    return tuple(load_palettes())


def palette(dataset: str) -> Palette:
    """The palette of a dataset by its key or an alias ("pascal", "voc", "ade", ...)."""
    key = _aliases().get(_norm(dataset))
    if key is None:
        raise UsageError(f"unknown dataset {dataset!r} (known: {', '.join(dataset_names())})")
    return load_palettes()[key]


def generic_palette(num_classes: int) -> Palette:
    """For a model of no known dataset: "class i" in PASCAL's colours, label 0 as background."""
    n = max(1, int(num_classes))
    return Palette("generic", f"{n} classes", tuple(f"class {i}" for i in range(n)), pascal_colormap(n), 0)


def by_num_classes(num_classes: int) -> Optional[str]:
    for key, pal in load_palettes().items():
        if len(pal) == num_classes:
            return key
    return None


def from_filename(name: str) -> Optional[str]:
    """The dataset a file name speaks of ("deeplabv3_mnv2_ade20k_513_os8..." -> "ade20k"), if any."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    table = _aliases()
    for w in words:
        if w in table:
            return table[w]
    return None


def choose_palette(dataset: Optional[str] = None, num_classes: Optional[int] = None,
                   filename: Optional[str] = None) -> Palette:
    """The palette for a model: ``dataset`` if given (must fit ``num_classes`` when that is known), else by
    the number of classes, else by the file name; a generic palette for anything else."""
    if dataset and _norm(dataset) not in ("", "custom", "auto"):
        pal = palette(dataset)
        if num_classes is not None and num_classes != len(pal):
            raise UsageError(f"dataset {pal.key} has {len(pal)} classes but the model has {num_classes}")
        return pal
    if num_classes is not None:
        key = by_num_classes(num_classes)
        return load_palettes()[key] if key else generic_palette(num_classes)
    key = from_filename(filename or "")
    if key:
        return load_palettes()[key]
    return generic_palette(256)
