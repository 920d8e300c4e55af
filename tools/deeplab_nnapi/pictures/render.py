"""Shared matplotlib plumbing: figures of an exact pixel size, figure -> array / PNG / SVG bytes, text bands.

Only matplotlib's object API is used (``Figure`` + a canvas, never ``pyplot``): no global state, no GUI
backend, the same output in threads and tests. Output is reproducible: no dates or software names in the
files, SVG ids from a fixed salt.
"""

from __future__ import annotations

import io
from typing import Sequence, Tuple

import numpy as np

from deeplab_nnapi.errors import UsageError

DPI = 100
FONT = "DejaVu Sans"  # ships with matplotlib: the same glyphs everywhere
RC = {
    "svg.fonttype": "none",  # text stays text in SVG (searchable, small)
    "svg.hashsalt": "deeplab-nnapi",
    "font.family": FONT,
    "path.simplify": False,
}


def matplotlib():
    """matplotlib, or one line on how to get it."""
    try:
        import matplotlib as mpl
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise UsageError("pictures need matplotlib: pip install 'deeplab-nnapi[pictures]'") from None
    return mpl


def figure(width_px: int, height_px: int, dpi: int = DPI):
    """A Figure exactly ``width_px`` x ``height_px`` pixels when drawn at ``dpi``."""
    matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # +0.25 px: figsize * dpi is truncated to int when the canvas is made; keep float error on the safe side
    fig = Figure(figsize=((width_px + 0.25) / dpi, (height_px + 0.25) / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def to_array(fig) -> np.ndarray:
    """Draw a figure with Agg: HxWx3 uint8."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def encode_png(pixels: np.ndarray) -> bytes:
    """HxWx3 uint8 -> PNG bytes (Pillow; no metadata, so the same pixels give the same file)."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_figure(fig, fmt: str, dpi: int = DPI) -> bytes:
    """A figure as ``svg`` or ``png`` bytes, reproducibly."""
    import matplotlib as mpl

    if fmt == "png":
        return encode_png(to_array(fig))
    if fmt == "svg":
        buf = io.BytesIO()
        with mpl.rc_context(RC):
            fig.savefig(buf, format="svg", dpi=dpi, metadata={"Date": None, "Creator": None})
        return buf.getvalue()
    raise ValueError(f"unknown figure format {fmt!r}")


def text_band(width: int, height: int, items: Sequence[Tuple[float, str, str, bool]], font_px: float,
              background: str = "white") -> np.ndarray:
    """A ``width`` x ``height`` strip of text: items are (x in pixels, text, ha, bold), vertically centred."""
    fig = figure(width, height)
    fig.patch.set_facecolor(background)
    pt = font_px * 72.0 / DPI
    for x, text, ha, bold in items:
        fig.text(x / width, 0.5, text, ha=ha, va="center", fontsize=pt,
                 fontweight="bold" if bold else "normal", family=FONT, color="#222222")
    return to_array(fig)[:height, :width]
