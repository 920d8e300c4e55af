#!/usr/bin/env python3
"""Wall time of the pictures: overlays of the sample photos (one model, and original beside fixed), and the
partition diagram (SVG and PNG). Needs the reference models (../shared/reference) and the pictures, images and
export extras. Prints figures; asserts nothing.

    .venv/bin/python tests/benchmarks/bench_pictures.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from deeplab_nnapi.images import sample_images  # noqa: E402
from deeplab_nnapi.nnapi.delegation import DelegateOptions  # noqa: E402
from deeplab_nnapi.nnapi.profile import load_profile  # noqa: E402
from deeplab_nnapi.pictures import make_panel, render_diagram, write_overlays, write_run_pictures  # noqa: E402
from reference_support import PASCAL_513_OS8, REFERENCE_MODELS, SEED_PROFILE, google_shaped  # noqa: E402


def timed(label, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:60} {time.perf_counter() - start:6.2f} s")
    return result


def main() -> None:
    photos = sample_images()
    fixed = PASCAL_513_OS8.read_bytes()
    google = google_shaped(fixed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timed(f"overlays, 1 model (pascal 513 os8), {len(photos)} sample photos",
              lambda: write_overlays([PASCAL_513_OS8], photos, out / "one"))
        small = [p for p in REFERENCE_MODELS if "257" in p.name][:1]
        if small:
            timed(f"overlays, 1 model ({small[0].stem}), {len(photos)} photos",
                  lambda: write_overlays(small, photos, out / "small"))
        run = timed(f"overlays, original beside fixed, {len(photos)} photos",
                    lambda: write_overlays([("original", google), ("fixed", fixed)], photos, out / "two"))
        print(f"  pixel agreement original vs fixed: {100 * run.agreement()[1]:.2f} % "
              f"({', '.join(f'{i.image} {100 * i.agreement[1]:.1f}' for i in run.images)})")
        sizes = [p.stat().st_size // 1024 for p in run.files]
        print(f"  sheet sizes: {min(sizes)}..{max(sizes)} KiB")
        pair = [("original", google), ("fixed", fixed)]
        timed("run pictures (2 models x 2 delegates diagram, overlays, report)",
              lambda: write_run_pictures(pair, out / "run", images=photos))
        print(f"  report.html: {(out / 'run' / 'report.html').stat().st_size // 1024} KiB")
    panel = make_panel(google, DelegateOptions(delegate="stock"), "google", load_profile(SEED_PROFILE))
    svg = timed("diagram, Google-shaped model with profile, SVG", lambda: render_diagram([panel], "svg"))
    png = timed("diagram, Google-shaped model with profile, PNG 150 dpi",
                lambda: render_diagram([panel], "png"))
    print(f"  SVG {len(svg) // 1024} KiB, PNG {len(png) // 1024} KiB")
    panels = [make_panel(p, DelegateOptions(delegate="stock")) for p in REFERENCE_MODELS]
    timed(f"diagram sheet, {len(panels)} reference models side by side, SVG",
          lambda: render_diagram(panels, "svg"))


if __name__ == "__main__":
    main()
