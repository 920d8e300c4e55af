"""Segmentation overlays: a label map over its photo in the dataset's colours, with a legend of the classes
present; several models' overlays of one photo side by side with their pixel agreement.

An overlay has exactly the photo's size. Pixels of the background class keep the photo; every other class
tints it (40 % photo, 60 % colour) and its outline is drawn in the full colour. The legend (class, share of
the photo) sits in the corner with the least foreground.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from deeplab_nnapi.pictures import render
from deeplab_nnapi.pictures.palettes import Palette

ALPHA = 0.6  # weight of the class colour inside a segment
MAX_LEGEND = 8  # classes listed; the rest are summed into one line
MIN_LEGEND_SIDE = 120  # pixels: smaller photos get no legend (it would cover them)
GAP = 12  # pixels between panels of a side-by-side sheet


def outline(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels on the border between two labels (a ``width``-pixel line on each side)."""
    edge = np.zeros(labels.shape, dtype=bool)
    dy = labels[1:, :] != labels[:-1, :]
    dx = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    for _ in range(max(0, width - 1)):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def blend(photo: np.ndarray, labels: np.ndarray, pal: Palette, alpha: float = ALPHA) -> np.ndarray:
    """The photo with every non-background segment tinted in its class colour and outlined."""
    if photo.shape[:2] != labels.shape:
        raise ValueError(f"photo {photo.shape[:2]} and label map {labels.shape} differ in size")
    colors = pal.colorize(labels).astype(np.float32)
    out = photo.astype(np.float32)
    fg = np.ones(labels.shape, dtype=bool) if pal.background is None else labels != pal.background
    out[fg] = (1.0 - alpha) * out[fg] + alpha * colors[fg]
    edge = outline(labels, 2 if min(labels.shape) >= 400 else 1) & fg  # the segment's own border pixels
    out[edge] = colors[edge]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ClassShare:
    label: int
    name: str
    color: Tuple[int, int, int]
    fraction: float


def class_shares(labels: np.ndarray, pal: Palette) -> List[ClassShare]:
    """The classes present, largest first."""
    values, counts = np.unique(labels, return_counts=True)
    total = float(labels.size) or 1.0
    shares = [ClassShare(int(v), pal.name(int(v)), pal.color(int(v)), c / total)
              for v, c in zip(values, counts)]
    return sorted(shares, key=lambda s: (-s.fraction, s.label))


def _legend_corner(labels: np.ndarray, pal: Palette) -> str:
    """The corner (matplotlib loc) whose quarter holds the least foreground."""
    h, w = labels.shape
    fg = np.ones(labels.shape, bool) if pal.background is None else labels != pal.background
    qh, qw = max(1, h * 2 // 5), max(1, w * 2 // 5)
    corners = {
        "upper left": fg[:qh, :qw],
        "upper right": fg[:qh, w - qw:],
        "lower left": fg[h - qh:, :qw],
        "lower right": fg[h - qh:, w - qw:],
    }
    if pal.background is None:  # every pixel is some class: any corner covers something; keep it fixed
        return "upper right"
    return min(corners, key=lambda k: (float(corners[k].mean()), list(corners).index(k)))


def _pct(fraction: float) -> str:
    p = 100.0 * fraction
    return f"{p:.0f} %" if p >= 1 else "<1 %"


def render_overlay(photo: np.ndarray, labels: np.ndarray, pal: Palette, legend: bool = True) -> np.ndarray:
    """The overlay as an HxWx3 uint8 array of the photo's size, legend included (on photos at least
    MIN_LEGEND_SIDE pixels high and wide)."""
    from matplotlib.patches import Patch

    h, w = labels.shape
    blended = blend(photo, labels, pal)
    if not legend or min(h, w) < MIN_LEGEND_SIDE:
        return blended
    fig = render.figure(w, h)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(blended, interpolation="nearest", extent=(0, w, h, 0))
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    shares = class_shares(labels, pal)
    shown = shares[:MAX_LEGEND]
    handles = [Patch(facecolor=np.array(s.color) / 255.0, edgecolor="#333333", linewidth=0.5,
                     label=f"{s.name}  {_pct(s.fraction)}") for s in shown]
    rest = shares[MAX_LEGEND:]
    if rest:
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=f"+{len(rest)} more ({_pct(sum(s.fraction for s in rest))})"))
    font_px = float(np.clip(min(h, w) / 30.0, 8.0, 15.0))
    ax.legend(handles=handles, loc=_legend_corner(labels, pal), fontsize=font_px * 72.0 / render.DPI,
              title=pal.title, title_fontsize=font_px * 72.0 / render.DPI, framealpha=0.8,
              borderaxespad=0.4, handlelength=1.2, handleheight=1.0, borderpad=0.4, labelspacing=0.25)
    return render.to_array(fig)[:h, :w]


def side_by_side(panels: Sequence[np.ndarray], titles: Sequence[str], caption: str,
                 gap: int = GAP) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """Panels (same height) in a row under their titles, a caption below. Returns the sheet and each panel's
    top-left (y, x) in it."""
    if not panels:
        raise ValueError("no panels")
    h = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) + 1)
    font_px = float(np.clip(h / 28.0, 11.0, 16.0))
    band = int(round(font_px * 2.2))
    sheet = np.full((band + h + band + gap, width, 3), 255, dtype=np.uint8)
    x = gap
    places: List[Tuple[int, int]] = []
    items = []
    for panel, title in zip(panels, titles):
        sheet[band:band + panel.shape[0], x:x + panel.shape[1]] = panel
        places.append((band, x))
        items.append((x + panel.shape[1] / 2.0, _shorten(title, panel.shape[1], font_px), "center", True))
        x += panel.shape[1] + gap
    sheet[:band] = render.text_band(width, band, items, font_px)
    sheet[band + h + gap // 2:band + h + gap // 2 + band] = render.text_band(
        width, band, [(width / 2.0, _shorten(caption, width, font_px), "center", False)], font_px)
    return sheet, places


def _shorten(text: str, width_px: float, font_px: float) -> str:
    """Cut text (with an ellipsis in the middle) to about what fits in ``width_px``."""
    fits = max(8, int(width_px / (font_px * 0.6)))
    if len(text) <= fits:
        return text
    keep = fits - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2):]


def agreement_caption(labels: Sequence[str], agreements: Sequence[Optional[float]]) -> str:
    """"pixel agreement with <first>: 99.1 % (b)" for every panel after the first."""
    parts = [f"{lab}: {100.0 * a:.2f} %" for lab, a in zip(labels[1:], agreements[1:]) if a is not None]
    if len(labels) == 2 and agreements[1] is not None:
        return f"pixel agreement {100.0 * agreements[1]:.2f} %"
    return f"pixel agreement with {labels[0]}: " + ", ".join(parts)
