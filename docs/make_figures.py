#!/usr/bin/env python3
"""Regenerate the README's pictures from the reference models:

    docs/google_vs_fixed_partitions.png  Google's export (rebuilt from the reference model:
                                         align_corners=True, int64 ArgMax) under the stock delegate with the
                                         seed profile's times, beside the reference model under our patched
                                         delegate (API 29)
    docs/overlay_pascal_astronaut.png    both models' segmentation of the astronaut photo, side by side

Usage: python docs/make_figures.py [OUT_DIR]   (default: docs/). Needs the 'pictures', 'images' and 'export'
extras and the reference material (../shared/reference beside the checkout, or $DEEPLAB_NNAPI_REFERENCE).
The PNGs are written with an adaptive 256-colour palette to keep them small.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))  # google_shaped(): the flatbuffer edit the tests use

from deeplab_nnapi.fileio import atomic_write  # noqa: E402
from deeplab_nnapi.images import sample_images  # noqa: E402
from deeplab_nnapi.nnapi.delegation import DelegateOptions  # noqa: E402
from deeplab_nnapi.nnapi.profile import load_profile  # noqa: E402
from deeplab_nnapi.pictures import draw_overlays, make_panel, render_diagram  # noqa: E402
from reference_support import PASCAL_513_OS8, SEED_PROFILE, google_shaped  # noqa: E402


def small_png(png: bytes) -> bytes:
    """The same picture with an adaptive 256-colour palette (a third of the size, no visible change)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        out = io.BytesIO()
        im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, format="PNG", optimize=True)
    return out.getvalue()


def main(out_dir: Path) -> None:
    fixed = PASCAL_513_OS8.read_bytes()
    google = google_shaped(fixed)
    panels = [
        make_panel(google, DelegateOptions(delegate="stock"),
                   "Google's export (align_corners=True, int64 ArgMax)", load_profile(SEED_PROFILE)),
        make_panel(fixed, DelegateOptions(delegate="patched"), f"fixed: {PASCAL_513_OS8.name}"),
    ]
    diagram = render_diagram(panels, "png", dpi=110)
    run = draw_overlays([("Google's export", google), ("fixed", fixed)], sample_images(["astronaut"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = (("google_vs_fixed_partitions.png", diagram),
                ("overlay_pascal_astronaut.png", run.images[0].png))
    for name, png in pictures:
        data = small_png(png)
        atomic_write(out_dir / name, data)
        print(f"{out_dir / name}: {len(data) // 1024} KiB")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "docs",
                    help="where to write (default: docs/)")
    main(ap.parse_args().out_dir)
