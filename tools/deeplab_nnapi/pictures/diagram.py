"""The partition diagram: a model's ops in execution order, coloured by the node they end up in, and the
nodes themselves as boxes (delegate partitions in a colour each, CPU ops grey, refused ops outlined in red
with the delegate's reason, measured times from a profile), under a title with the summary line. Several
panels (models, delegates, API levels) make one sheet, side by side.

Drawn with matplotlib (object API). Every node is one SVG group, ``<g id="node-71-ops-0-60_64">`` (on a
sheet of several panels ``p1-node-...``), holding its op cells, its box and its texts; :func:`node_groups`
reads them back.

Layout unit: the inch (data coordinates of each panel's axes are inches, y pointing down).
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from deeplab_nnapi.nnapi.delegation import Node
from deeplab_nnapi.nnapi.tflite_model import format_ranges
from deeplab_nnapi.pictures import render
from deeplab_nnapi.pictures.planview import (
    CPU_COLOR,
    PARTITION_COLORS,
    REFUSED_COLOR,
    Panel,
    abbreviate,
    ops_id,
)

PANEL_W = 7.6  # inches
MARGIN = 0.2
GUTTER = 0.5  # left of the node boxes: arrows between nodes that are not next to each other
CELL_W, CELL_H, CELL_GAP = 0.4, 0.3, 0.035
BOX_PAD = 0.08
HEADER_H = 0.27
NODE_GAP = 0.24
STRIP_H = 0.3
STRIP_MAX_PER_ROW = 96
TEXT = "#222222"
_CHAR_W = 0.52 / 72.0  # average glyph width per point of font size, in inches (DejaVu Sans)

_GID = re.compile(r"^(?:p(\d+)-)?node-(\d+)-ops-([0-9_-]+)$")


def node_gid(panel_no: int, panels: int, node: Node) -> str:
    prefix = f"p{panel_no}-" if panels > 1 else ""
    return f"{prefix}node-{node.index}-ops-{ops_id(node.ops)}"


def node_groups(svg: bytes) -> Dict[int, List[Tuple[int, List[int]]]]:
    """Read a diagram back: per panel (0, 1, ...), the (node index, op indices) of every node group, in
    document order."""
    out: Dict[int, List[Tuple[int, List[int]]]] = {}
    for el in ET.fromstring(svg).iter():
        if not el.tag.endswith("}g") and el.tag != "g":
            continue
        m = _GID.match(el.get("id", ""))
        if not m:
            continue
        ops: List[int] = []
        for part in m.group(3).split("_"):
            lo, _, hi = part.partition("-")
            ops.extend(range(int(lo), int(hi or lo) + 1))
        out.setdefault(int(m.group(1) or 0), []).append((int(m.group(2)), ops))
    return out


# ----------------------------------------------------------------------------------------------------
# one SVG group per node


def _group_class():
    from matplotlib.artist import Artist

    class Group(Artist):
        """Draws its children inside one renderer group with this artist's gid."""

        def __init__(self, gid: str, children: Sequence[Artist]):
            super().__init__()
            self.set_gid(gid)
            self._kids = list(children)

        def get_children(self):
            return list(self._kids)

        def draw(self, renderer):
            if not self.get_visible():
                return
            renderer.open_group("node", gid=self.get_gid())
            for kid in self._kids:
                kid.draw(renderer)
            renderer.close_group("node")
            self.stale = False

    return Group


def _adopt(ax, artist):
    artist.set_figure(ax.figure)
    artist.set_transform(ax.transData)
    artist.axes = ax
    artist.set_clip_on(False)
    return artist


# ----------------------------------------------------------------------------------------------------
# layout


@dataclass
class _Box:
    node: Node
    y: float
    height: float
    cells: List[Tuple[int, float, float]] = field(default_factory=list)  # (op, x, y)
    reason_lines: List[str] = field(default_factory=list)
    reason_x: float = 0.0


def _wrap(text: str, width_in: float, font_pt: float) -> List[str]:
    chars = max(12, int(width_in / (font_pt * _CHAR_W)))
    return textwrap.wrap(text, chars) or [""]


def _reason_text(panel: Panel, node: Node) -> str:
    refused = panel.refusals()
    parts = [f"op {op}: {refused[op]}" for op in node.ops if op in refused]
    if not parts and not node.is_delegate:
        if any(op in panel.plan.not_delegated for op in node.ops):
            return "supported, but left on the CPU: more partitions than max_number_delegated_partitions"
        return "not offered to the delegate"
    return "refused: " + "; ".join(parts) if parts else ""


def _layout_boxes(panel: Panel, top: float) -> Tuple[List[_Box], float]:
    x0, x1 = MARGIN + GUTTER, PANEL_W - MARGIN
    inner = x1 - x0 - 2 * BOX_PAD
    cols = max(1, int((inner + CELL_GAP) // (CELL_W + CELL_GAP)))
    boxes: List[_Box] = []
    y = top
    for node in panel.plan.nodes:
        ops = sorted(node.ops)
        box = _Box(node, y, 0.0)
        if node.is_delegate or len(ops) > 1:
            rows = (len(ops) + cols - 1) // cols
            for k, op in enumerate(ops):
                r, c = divmod(k, cols)
                box.cells.append((op, x0 + BOX_PAD + c * (CELL_W + CELL_GAP),
                                  y + HEADER_H + r * (CELL_H + CELL_GAP)))
            body = rows * (CELL_H + CELL_GAP) - CELL_GAP
        else:
            box.cells.append((ops[0], x0 + BOX_PAD, y + HEADER_H))
            body = CELL_H
        reason = _reason_text(panel, node)
        if reason:
            box.reason_x = x0 + BOX_PAD + (CELL_W + 0.12 if len(ops) == 1 else 0.0)
            box.reason_lines = _wrap(reason, x1 - BOX_PAD - box.reason_x, 6.5)
            text_h = len(box.reason_lines) * 0.115
            if len(ops) == 1:
                body = max(body, text_h)
            else:
                body += 0.06 + text_h
        box.height = HEADER_H + body + BOX_PAD
        boxes.append(box)
        y += box.height + NODE_GAP
    return boxes, y - NODE_GAP


def _strip_rows(n_ops: int) -> int:
    return max(1, (n_ops + STRIP_MAX_PER_ROW - 1) // STRIP_MAX_PER_ROW)


def _title_lines(panel: Panel) -> List[Tuple[str, float, str, str]]:
    """(text, font pt, weight, colour) of the title block."""
    ok = panel.plan.single_partition
    lines = [
        (panel.label, 10.0, "bold", TEXT),
        (panel.options_line(), 7.5, "normal", "#555555"),
        (panel.summary_line(), 8.5, "bold", "#1e7b34" if ok else REFUSED_COLOR),
    ]
    if panel.profile_note:
        lines.append((panel.profile_note, 7.0, "normal", "#555555"))
    return lines


def panel_height(panel: Panel) -> float:
    top = MARGIN + 0.2 * len(_title_lines(panel)) + 0.12
    top += 0.2 + _strip_rows(panel.plan.num_ops) * (STRIP_H + 0.2) + 0.15
    _, bottom = _layout_boxes(panel, top)
    return bottom + 0.45 + MARGIN


# ----------------------------------------------------------------------------------------------------
# drawing


def _draw_panel(ax, panel: Panel, panel_no: int, panels: int) -> None:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
    from matplotlib.text import Text

    Group = _group_class()
    plan = panel.plan
    refused = panel.refusals()
    color_of_op: Dict[int, str] = {}
    for node in plan.nodes:
        for op in node.ops:
            color_of_op[op] = panel.node_color(node)
    op_type = {op.index: op.op_type for op in panel.model.operators}

    # title block
    y = MARGIN
    for text, size, weight, color in _title_lines(panel):
        shown = textwrap.shorten(text, int((PANEL_W - 2 * MARGIN) / (size * _CHAR_W)), placeholder=" …")
        ax.text(MARGIN, y, shown, fontsize=size, fontweight=weight, color=color, va="top", ha="left")
        y += 0.2
    y += 0.12

    # op strip: every op in execution order (op index), coloured by its node
    n_ops = plan.num_ops
    ax.text(MARGIN, y, f"ops 0-{n_ops - 1} in execution order, coloured by the node they run in",
            fontsize=7, color="#555555", va="top")
    y += 0.2
    rows = _strip_rows(n_ops)
    per_row = (n_ops + rows - 1) // rows if n_ops else 1
    cw = (PANEL_W - 2 * MARGIN) / max(1, per_row)
    strip_cells: Dict[int, List] = {}
    for op in range(n_ops):
        r, c = divmod(op, per_row)
        x, yy = MARGIN + c * cw, y + r * (STRIP_H + 0.2)
        rect = Rectangle((x, yy), cw, STRIP_H, facecolor=color_of_op.get(op, "white"),
                         edgecolor=REFUSED_COLOR if op in refused else "white",
                         linewidth=1.2 if op in refused else 0.3)
        strip_cells.setdefault(op, []).append(rect)
        step = 10 if per_row > 30 else 5
        if op % step == 0 or op == n_ops - 1:
            ax.text(x + cw / 2, yy + STRIP_H + 0.03, str(op), fontsize=5.5, ha="center", va="top",
                    color="#555555")
    y += rows * (STRIP_H + 0.2) + 0.15

    # node boxes
    boxes, _ = _layout_boxes(panel, y)
    x0, x1 = MARGIN + GUTTER, PANEL_W - MARGIN
    for box in boxes:
        node = box.node
        color = panel.node_color(node)
        kids: List = list(strip_cells.get(node.ops[0], []))
        for op in node.ops[1:]:
            kids += strip_cells.get(op, [])
        kids.append(FancyBboxPatch((x0, box.y), x1 - x0, box.height,
                                   boxstyle="round,pad=0,rounding_size=0.05",
                                   facecolor=_tint(color, 0.18 if node.is_delegate else 0.35),
                                   edgecolor=color if node.is_delegate else "#8a8a8a",
                                   linewidth=1.4 if node.is_delegate else 0.9))
        number = panel.partition_number(node)
        where = f"NNAPI partition {number}" if number else f"CPU · {node.type}"
        ops_text = format_ranges(node.ops)
        count = f" ({len(node.ops)} ops)" if len(node.ops) > 1 else ""
        head = f"node {node.index} · {where} · op{'s' if len(node.ops) > 1 else ''} {ops_text}{count}"
        kids.append(Text(x0 + BOX_PAD, box.y + 0.045, head, fontsize=7.5, fontweight="bold", color=TEXT,
                         va="top", ha="left"))
        kids += _time_artists(panel, boxes.index(box), x1, box.y)
        for op, cx, cy in box.cells:
            bad = op in refused
            kids.append(Rectangle((cx, cy), CELL_W, CELL_H, facecolor=color,
                                  edgecolor=REFUSED_COLOR if bad else "white", linewidth=1.6 if bad else 0.5))
            ink = "white" if node.is_delegate else TEXT
            kids.append(Text(cx + CELL_W / 2, cy + 0.1, str(op), fontsize=6.2, fontweight="bold", color=ink,
                             ha="center", va="center"))
            kids.append(Text(cx + CELL_W / 2, cy + 0.215, abbreviate(op_type.get(op, "?")), fontsize=4.2,
                             color=ink, ha="center", va="center"))
        if box.reason_lines:
            if len(node.ops) == 1:
                ty = box.y + HEADER_H
            else:
                ty = box.cells[-1][2] + CELL_H + 0.06
            kids.append(Text(box.reason_x, ty, "\n".join(box.reason_lines), fontsize=6.5, va="top", ha="left",
                             color=REFUSED_COLOR if any(op in refused for op in node.ops) else "#555555",
                             linespacing=1.25))
        group = Group(node_gid(panel_no, panels, node), [_adopt(ax, k) for k in kids])
        ax.add_artist(group)

    # data flow between nodes: next to each other straight down, otherwise around the left
    skip = 0
    for src, dst in panel.edges():
        a, b = boxes[src], boxes[dst]
        if dst == src + 1:
            ax.add_patch(FancyArrowPatch((x0 + 0.3, a.y + a.height), (x0 + 0.3, b.y), arrowstyle="-|>",
                                         mutation_scale=8, color="#444444", linewidth=0.9,
                                         shrinkA=0, shrinkB=0))
        else:
            arm = 0.16 + 0.09 * (skip % 4)
            skip += 1
            start = (x0, a.y + min(a.height / 2, 0.3))
            end = (x0, b.y + min(b.height / 2, 0.15))
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=8, color="#444444",
                                         linewidth=0.9, shrinkA=0, shrinkB=0,
                                         connectionstyle=f"bar,armA={arm * 72},armB={arm * 72},fraction=0"))

    # key
    ky = boxes[-1].y + boxes[-1].height + 0.2 if boxes else y
    kx = MARGIN
    for label, face, edge in (("NNAPI partition (one colour each)", PARTITION_COLORS[0], "white"),
                              ("CPU", CPU_COLOR, "white"),
                              ("refused by the delegate", "white", REFUSED_COLOR)):
        ax.add_patch(Rectangle((kx, ky), 0.18, 0.13, facecolor=face, edgecolor=edge, linewidth=1.2))
        t = ax.text(kx + 0.24, ky + 0.065, label, fontsize=6.5, va="center", color="#555555")
        kx += 0.24 + len(t.get_text()) * 6.5 * _CHAR_W + 0.25


def _time_artists(panel: Panel, pos: int, x1: float, y: float) -> List:
    """Measured time at the right of a node's header, with a bar for its share of the run."""
    from matplotlib.patches import Rectangle
    from matplotlib.text import Text

    if not panel.times:
        return []
    t = panel.times[pos]
    if t is None:
        return []
    bar_w = 1.0
    share = t.percent if t.percent is not None else (100.0 * t.avg_ms / panel.profile.total_ms
                                                     if panel.profile and panel.profile.total_ms else 0.0)
    bx = x1 - BOX_PAD - bar_w
    out = [
        Rectangle((bx, y + 0.07), bar_w, 0.11, facecolor="white", edgecolor="#8a8a8a", linewidth=0.5),
        Rectangle((bx, y + 0.07), bar_w * min(100.0, share) / 100.0, 0.11, facecolor="#444444", linewidth=0),
        Text(bx - 0.08, y + 0.045, f"{t.avg_ms:.3f} ms · {share:.1f} %", fontsize=7.5, fontweight="bold",
             color=TEXT, va="top", ha="right"),
    ]
    return out


def _tint(color: str, amount: float) -> Tuple[float, float, float]:
    """``color`` mixed with white: ``amount`` of the colour."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


def draw(panels: Sequence[Panel], title: Optional[str] = None):
    """The figure: one panel, or several side by side (one sheet)."""
    render.matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("no panels to draw")
    head = 0.45 if title else 0.0
    height = max(panel_height(p) for p in panels) + head
    width = PANEL_W * len(panels)
    fig = Figure(figsize=(width, height), dpi=render.DPI)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    if title:
        fig.text(MARGIN / width, 1 - 0.15 / height, title, fontsize=11, fontweight="bold", va="top",
                 color=TEXT)
    for k, panel in enumerate(panels):
        ax = fig.add_axes((k * PANEL_W / width, 0, PANEL_W / width, (height - head) / height))
        ax.set_gid(f"panel-{k}")
        ax.set_xlim(0, PANEL_W)
        ax.set_ylim(height - head, 0)
        ax.set_axis_off()
        _draw_panel(ax, panel, k, len(panels))
        if k:
            ax.plot([0, 0], [MARGIN, height - head - MARGIN], color="#dddddd", linewidth=0.8)
    return fig


def render_diagram(panels: Sequence[Panel], fmt: str, title: Optional[str] = None, dpi: int = 150) -> bytes:
    """The diagram as ``svg`` or ``png`` bytes."""
    import matplotlib as mpl

    with mpl.rc_context(render.RC):
        fig = draw(panels, title)
        if fmt == "png":
            fig.set_dpi(dpi)
            return render.encode_png(render.to_array(fig))
        return render.save_figure(fig, fmt)
