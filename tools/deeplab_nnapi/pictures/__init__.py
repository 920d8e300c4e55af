"""Pictures of what the tools find: the partition diagram of a model (which ops run in which NNAPI delegate
partition, which stay on the CPU and why) and segmentation overlays (a model's label map over photos, several
models side by side with their pixel agreement), gathered in a one-file HTML report.

Needs the ``pictures`` extra (matplotlib) for drawing, ``images`` (Pillow, scikit-image) for photos and
``export`` (ai-edge-litert) to run models. Modules: ``palettes`` (datasets' classes and colours),
``planview`` (what a diagram shows), ``diagram_layout`` (where its parts go), ``diagram`` (drawing it),
``segment`` (running a model on photos), ``overlay`` (drawing overlays), ``overlay_run`` (overlays for
models x photos), ``report_html``, ``api`` (a run in one call); ``render`` and ``writing`` are the shared
plumbing (matplotlib figures, atomic all-or-nothing writes).
"""

from deeplab_nnapi.pictures.api import (
    DEFAULT_OPTIONS,
    RunPictures,
    draw_run_pictures,
    panels_for,
    write_diagram,
    write_run_pictures,
)
from deeplab_nnapi.pictures.diagram import node_groups, render_diagram
from deeplab_nnapi.pictures.overlay_run import OverlayImage, OverlayRun, draw_overlays, write_overlays
from deeplab_nnapi.pictures.palettes import Palette, choose_palette, palette
from deeplab_nnapi.pictures.planview import Panel, make_panel

__all__ = [
    "DEFAULT_OPTIONS",
    "OverlayImage",
    "OverlayRun",
    "Palette",
    "Panel",
    "RunPictures",
    "choose_palette",
    "draw_overlays",
    "draw_run_pictures",
    "make_panel",
    "node_groups",
    "palette",
    "panels_for",
    "render_diagram",
    "write_diagram",
    "write_overlays",
    "write_run_pictures",
]
