"""Pictures for a run, in one call: partition diagrams, segmentation overlays and the HTML report.

::

    from deeplab_nnapi.pictures import write_run_pictures
    pics = write_run_pictures([("original", "google.tflite"), ("fixed", "fixed.tflite")], "out/pictures")
    pics.files, pics.report, pics.overlays[0].agreement()

``side_by_side=True`` (a comparison: original and fixed, float and quantized): one diagram sheet with
every model under every delegate option, one overlay sheet per photo. ``side_by_side=False`` (a set of
models, as an export writes): per model a diagram ``<label>.partitions.svg`` and its overlays in
``<label>/``. Everything is rendered in memory, then written all or nothing.

``label_maps=`` draws label maps the caller already has (per photo, one map per model at the photo's size)
instead of running the models. :func:`draw_run_pictures` renders without writing (``pending`` holds the
files), for a tool that writes them together with its own output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeplab_nnapi.nnapi.delegation import DelegateOptions
from deeplab_nnapi.nnapi.profile import Profile
from deeplab_nnapi.pictures.diagram import render_diagram
from deeplab_nnapi.pictures.overlay_run import (
    ImagesArg,
    ModelArg,
    OverlayRun,
    _models,
    draw_overlays,
    resolve_images,
    safe_name,
)
from deeplab_nnapi.pictures.planview import Panel, make_panel
from deeplab_nnapi.pictures.report_html import Figure, report_html
from deeplab_nnapi.pictures.segment import model_bytes
from deeplab_nnapi.pictures.writing import figure_format, write_files

#: What a diagram of a run shows by default: the stock delegate beside ours, at NNAPI 1.2.
DEFAULT_OPTIONS: Tuple[DelegateOptions, ...] = (DelegateOptions(delegate="stock"),
                                               DelegateOptions(delegate="patched"))


def panels_for(models: Sequence[Tuple[str, bytes]], options: Sequence[DelegateOptions] = DEFAULT_OPTIONS,
               profile: Optional[Profile] = None) -> List[Panel]:
    """Every model under every option set, model by model."""
    return [make_panel(data, opt, label, profile) for label, data in models for opt in options]


def write_diagram(panels: Sequence[Panel], path: Union[str, Path], title: Optional[str] = None) -> Path:
    """Render panels (side by side if several) to ``path`` (.svg or .png), atomically."""
    fmt = figure_format(path)
    write_files([(Path(path), render_diagram(panels, fmt, title))])
    return Path(path)


@dataclass
class RunPictures:
    diagrams: List[Path] = field(default_factory=list)
    overlays: List[OverlayRun] = field(default_factory=list)
    report: Optional[Path] = None
    pending: List[Tuple[Path, bytes]] = field(default_factory=list, repr=False)  # rendered, not yet written

    @property
    def files(self) -> List[Path]:
        out = list(self.diagrams)
        for run in self.overlays:
            out += run.files
        return out + ([self.report] if self.report else [])

    def to_json(self) -> dict:
        return {
            "diagrams": [str(p) for p in self.diagrams],
            "overlays": [r.to_json() for r in self.overlays],
            "report": str(self.report) if self.report else None,
        }


def draw_run_pictures(models: Sequence[ModelArg], out_dir: Union[str, Path], *, images: ImagesArg = None,
                      dataset: Union[None, str, Dict[str, str]] = None,
                      options: Sequence[DelegateOptions] = DEFAULT_OPTIONS, side_by_side: bool = True,
                      title: str = "deeplab-nnapi pictures", profile: Optional[Profile] = None,
                      diagram_format: str = "svg", report_name: str = "report.html",
                      intro: Sequence[str] = (), notes: Sequence[str] = (),
                      label_maps: Optional[Sequence[Sequence[np.ndarray]]] = None) -> RunPictures:
    """Render what :func:`write_run_pictures` writes, in memory: the files are in ``pending``."""
    out_dir = Path(out_dir)
    pairs = [(label, model_bytes(src)) for label, src in _models(models)]
    photos = resolve_images(images)
    files: List[Tuple[Path, bytes]] = []
    figures: List[Figure] = []
    runs: List[OverlayRun] = []
    pics = RunPictures()

    def diagram(group: Sequence[Tuple[str, bytes]], name: str) -> None:
        panels = panels_for(group, options, profile)
        data = render_diagram(panels, diagram_format)
        path = out_dir / name
        files.append((path, data))
        pics.diagrams.append(path)
        caption = "; ".join(f"{p.label} ({p.options.delegate}, API {p.options.android_api}): "
                            f"{p.summary_line()}" for p in panels)
        figures.append(Figure(caption, data, diagram_format))

    def ds(label: str) -> Optional[str]:
        return dataset.get(label) if isinstance(dataset, dict) else dataset

    if side_by_side:
        diagram(pairs, f"partitions.{diagram_format}")
        runs.append(draw_overlays(pairs, photos, ds(pairs[0][0]), out_dir, maps=label_maps))
    else:
        for k, (label, data) in enumerate(pairs):
            diagram([(label, data)], f"{safe_name(label)}.partitions.{diagram_format}")
            mine = None if label_maps is None else [[per_photo[k]] for per_photo in label_maps]
            runs.append(draw_overlays([(label, data)], photos, ds(label), out_dir / safe_name(label), "",
                                      maps=mine))
    for run in runs:
        files += [(i.path, i.png) for i in run.images]
    report = out_dir / report_name
    lines = [f"Models: {', '.join(label for label, _ in pairs)}. "
             f"Photos: {', '.join(p.name for p in photos)}.", *intro]
    text = report_html(title, figures, runs, lines, notes)
    files.append((report, text.encode("utf-8")))
    pics.overlays = runs
    pics.report = report
    pics.pending = files
    return pics


def write_run_pictures(models: Sequence[ModelArg], out_dir: Union[str, Path], *, images: ImagesArg = None,
                       dataset: Union[None, str, Dict[str, str]] = None,
                       options: Sequence[DelegateOptions] = DEFAULT_OPTIONS, side_by_side: bool = True,
                       title: str = "deeplab-nnapi pictures", profile: Optional[Profile] = None,
                       diagram_format: str = "svg", report_name: str = "report.html",
                       intro: Sequence[str] = (), notes: Sequence[str] = (),
                       label_maps: Optional[Sequence[Sequence[np.ndarray]]] = None) -> RunPictures:
    """Diagrams, overlays and report for ``models`` into ``out_dir`` (see the module doc).

    ``dataset``: one palette name for all models, or {label: name} (e.g. from an export manifest);
    ``intro``/``notes``: extra paragraphs at the top / items at the end of the report.
    """
    pics = draw_run_pictures(models, out_dir, images=images, dataset=dataset, options=options,
                             side_by_side=side_by_side, title=title, profile=profile,
                             diagram_format=diagram_format, report_name=report_name, intro=intro,
                             notes=notes, label_maps=label_maps)
    write_files(pics.pending)
    pics.pending = []
    return pics
