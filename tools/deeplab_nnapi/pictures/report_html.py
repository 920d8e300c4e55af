"""A one-file HTML report of a run: partition diagrams and segmentation overlays, every picture inline as a
``data:`` URI (the file can be mailed or attached to a CI run as it is).

The page is built with :mod:`html` escaping from a few small templates; nothing in it depends on the time or
the machine, so the same run gives the same file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from deeplab_nnapi.pictures.overlay_run import OverlayRun

_MIME = {"svg": "image/svg+xml", "png": "image/png"}

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1600px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; }
p.note { color: #555; font-size: 0.9em; }
"""


@dataclass
class Figure:
    caption: str
    data: bytes
    fmt: str  # "svg" | "png"
    alt: str = ""


@dataclass
class Report:
    title: str
    intro: List[str] = field(default_factory=list)
    diagrams: List[Figure] = field(default_factory=list)
    overlays: List[OverlayRun] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def data_uri(data: bytes, fmt: str) -> str:
    return f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(fig: Figure) -> str:
    alt = html.escape(fig.alt or fig.caption, quote=True)
    return (f'<figure><img src="{data_uri(fig.data, fig.fmt)}" alt="{alt}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>")


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100.0 * value:.2f} %"


def _overlay_section(run: OverlayRun) -> List[str]:
    e = html.escape
    out = [f"<h3>{e(' vs '.join(run.models))} ({e(run.dataset)})</h3>"]
    head = "<tr><th>photo</th><th>size</th>" + "".join(f"<th>{e(m)}: classes</th>" for m in run.models)
    if len(run.models) > 1:
        head += "".join(f"<th>agreement {e(m)}</th>" for m in run.models[1:])
    rows = [head + "</tr>"]
    for img in run.images:
        cells = [f"<td>{e(img.image)}</td>", f"<td>{img.size[1]}×{img.size[0]}</td>"]
        for classes in img.classes:
            top = ", ".join(f"{s.name} {100.0 * s.fraction:.0f} %" for s in classes[:4])
            cells.append(f"<td>{e(top)}</td>")
        cells += [f'<td class="num">{_pct(a)}</td>' for a in img.agreement[1:]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if len(run.models) > 1:
        total = run.agreement()
        rows.append(f'<tr><th colspan="{2 + len(run.models)}">all photos (pixel-weighted)</th>'
                    + "".join(f'<td class="num">{_pct(a)}</td>' for a in total[1:]) + "</tr>")
    out.append("<table>" + "".join(rows) + "</table>")
    for img in run.images:
        caption = f"{img.image}: " + " | ".join(run.models)
        if len(run.models) > 1:
            caption += " — pixel agreement " + ", ".join(_pct(a) for a in img.agreement[1:])
        out.append(_figure(Figure(caption, img.png, "png")))
    return out


def build_report(report: Report) -> str:
    """The HTML text."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(report.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(report.title)}</h1>"]
    parts += [f"<p>{e(p)}</p>" for p in report.intro]
    if report.diagrams:
        parts.append("<h2>Partitions</h2>")
        parts.append('<p class="note">Ops in execution order, coloured by the node they run in: one colour '
                     "per NNAPI delegate partition, grey for ops on the CPU, red outline for ops the "
                     "delegate refuses (with its reason).</p>")
        parts += [_figure(d) for d in report.diagrams]
    if report.overlays:
        parts.append("<h2>Segmentations</h2>")
        for run in report.overlays:
            parts += _overlay_section(run)
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def report_html(title: str, diagrams: Sequence[Figure] = (), overlays: Sequence[OverlayRun] = (),
                intro: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    return build_report(Report(title, list(intro), list(diagrams), list(overlays), list(notes)))
