"""The partition diagram: a model's ops in execution order, coloured by the node they end up in, and the
nodes themselves as boxes (delegate partitions in a colour each, CPU ops grey, refused ops outlined in red
with the delegate's reason, measured times from a profile), under a title with the summary line. Several
panels (models, delegates, API levels) make one sheet, side by side.

Drawn with matplotlib (object API) where :mod:`deeplab_nnapi.pictures.diagram_layout` places things. Every
node is one SVG group, ``<g id="node-71-ops-0-60_64">`` (on a sheet of several panels ``p1-node-...``),
holding its op cells (in the strip and in its box), its box and its texts; :func:`node_groups` reads them
back. Each panel is ``<g id="panel-K">``.
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

from deeplab_nnapi.nnapi.delegation import Node
from deeplab_nnapi.nnapi.tflite_model import format_ranges
from deeplab_nnapi.pictures import render
from deeplab_nnapi.pictures.diagram_layout import (
    BOX_PAD,
    BOX_X0,
    BOX_X1,
    CELL_H,
    CELL_W,
    MARGIN,
    MUTED,
    PANEL_W,
    REASON_PT,
    STRIP_H,
    STRIP_ROW,
    TEXT,
    Box,
    Layout,
    chars_for,
    layout,
)
from deeplab_nnapi.pictures.planview import (
    CPU_COLOR,
    PARTITION_COLORS,
    REFUSED_COLOR,
    Panel,
    abbreviate,
    ops_id,
)

_GID = re.compile(r"^(?:p(\d+)-)?node-(\d+)-ops-([0-9_-]+)$")
ARROW = {"arrowstyle": "-|>", "mutation_scale": 8, "color": "#444444", "linewidth": 0.9, "shrinkA": 0,
         "shrinkB": 0}


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


@lru_cache(maxsize=1)
def _group_class():
    from matplotlib.artist import Artist

    class Group(Artist):
        """Draws its children inside one renderer group (an SVG ``<g>``) with this artist's gid."""

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
    """Make an artist drawable in ``ax``'s inch coordinates without adding it to ``ax`` itself."""
    artist.set_figure(ax.figure)
    artist.set_transform(ax.transData)
    artist.axes = ax
    artist.set_clip_on(False)
    return artist


def _tint(color: str, amount: float) -> Tuple[float, float, float]:
    """``color`` mixed with white: ``amount`` of the colour."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


# ----------------------------------------------------------------------------------------------------
# a panel's parts


def _draw_title(ax, lay: Layout) -> None:
    for text, size, weight, color, y in lay.title:
        shown = textwrap.shorten(text, chars_for(PANEL_W - 2 * MARGIN, size), placeholder=" …")
        ax.text(MARGIN, y, shown, fontsize=size, fontweight=weight, color=color, va="top", ha="left")


def _strip_cells(ax, panel: Panel, lay: Layout) -> Dict[int, object]:
    """The op strip: every op by index, coloured by its node. Returns op -> cell (drawn in its node's
    group)."""
    from matplotlib.patches import Rectangle

    n_ops = panel.plan.num_ops
    ax.text(MARGIN, lay.strip_label_y,
            f"ops 0-{n_ops - 1} in execution order, coloured by the node they run in",
            fontsize=7, color=MUTED, va="top")
    color_of_op = {op: panel.node_color(node) for node in panel.plan.nodes for op in node.ops}
    refused = panel.refusals()
    step = 10 if lay.strip_per_row > 30 else 5
    cw = lay.strip_cell_w
    cells = {}
    for op in range(n_ops):
        r, c = divmod(op, lay.strip_per_row)
        x, y = MARGIN + c * cw, lay.strip_y + r * STRIP_ROW
        bad = op in refused
        cells[op] = Rectangle((x, y), cw, STRIP_H, facecolor=color_of_op.get(op, "white"),
                              edgecolor=REFUSED_COLOR if bad else "white", linewidth=1.2 if bad else 0.3)
        if op % step == 0 or op == n_ops - 1:
            ax.text(x + cw / 2, y + STRIP_H + 0.03, str(op), fontsize=5.5, ha="center", va="top", color=MUTED)
    return cells


def _time_artists(panel: Panel, pos: int, y: float) -> List:
    """The measured time at the right of a node's header, with a bar for its share of the run."""
    from matplotlib.patches import Rectangle
    from matplotlib.text import Text

    t = panel.times[pos] if panel.times else None
    if t is None:
        return []
    total = panel.profile.total_ms if panel.profile else 0.0
    share = t.percent if t.percent is not None else (100.0 * t.avg_ms / total if total else 0.0)
    bar_w = 1.0
    bx = BOX_X1 - BOX_PAD - bar_w
    return [
        Rectangle((bx, y + 0.07), bar_w, 0.11, facecolor="white", edgecolor="#8a8a8a", linewidth=0.5),
        Rectangle((bx, y + 0.07), bar_w * min(100.0, share) / 100.0, 0.11, facecolor="#444444", linewidth=0),
        Text(bx - 0.08, y + 0.045, f"{t.avg_ms:.3f} ms · {share:.1f} %", fontsize=7.5, fontweight="bold",
             color=TEXT, va="top", ha="right"),
    ]


def _node_artists(panel: Panel, box: Box, pos: int, op_type: Dict[int, str]) -> List:
    """A node's box, header, op cells and reason."""
    from matplotlib.patches import FancyBboxPatch, Rectangle
    from matplotlib.text import Text

    node = box.node
    color = panel.node_color(node)
    refused = panel.refusals()
    out: List = [FancyBboxPatch((BOX_X0, box.y), BOX_X1 - BOX_X0, box.height,
                                boxstyle="round,pad=0,rounding_size=0.05",
                                facecolor=_tint(color, 0.18 if node.is_delegate else 0.35),
                                edgecolor=color if node.is_delegate else "#8a8a8a",
                                linewidth=1.4 if node.is_delegate else 0.9)]
    number = panel.partition_number(node)
    where = f"NNAPI partition {number}" if number else f"CPU · {node.type}"
    many = len(node.ops) > 1
    head = (f"node {node.index} · {where} · op{'s' if many else ''} {format_ranges(node.ops)}"
            + (f" ({len(node.ops)} ops)" if many else ""))
    out.append(Text(BOX_X0 + BOX_PAD, box.y + 0.045, head, fontsize=7.5, fontweight="bold", color=TEXT,
                    va="top", ha="left"))
    out += _time_artists(panel, pos, box.y)
    ink = "white" if node.is_delegate else TEXT
    for op, cx, cy in box.cells:
        bad = op in refused
        out.append(Rectangle((cx, cy), CELL_W, CELL_H, facecolor=color,
                             edgecolor=REFUSED_COLOR if bad else "white", linewidth=1.6 if bad else 0.5))
        out.append(Text(cx + CELL_W / 2, cy + 0.1, str(op), fontsize=6.2, fontweight="bold", color=ink,
                        ha="center", va="center"))
        out.append(Text(cx + CELL_W / 2, cy + 0.215, abbreviate(op_type.get(op, "?")), fontsize=4.6,
                        color=ink, ha="center", va="center"))
    if box.reason_lines:
        out.append(Text(box.reason_x, box.reason_y, "\n".join(box.reason_lines), fontsize=REASON_PT, va="top",
                        ha="left", linespacing=1.25,
                        color=REFUSED_COLOR if any(op in refused for op in node.ops) else MUTED))
    return out


def _draw_edges(ax, panel: Panel, boxes: List[Box]) -> None:
    """Data flow between nodes: next to each other straight down, otherwise around the left."""
    from matplotlib.patches import FancyArrowPatch

    skip = 0
    for src, dst in panel.edges():
        a, b = boxes[src], boxes[dst]
        if dst == src + 1:
            ax.add_patch(FancyArrowPatch((BOX_X0 + 0.3, a.y + a.height), (BOX_X0 + 0.3, b.y), **ARROW))
            continue
        arm = (0.16 + 0.09 * (skip % 4)) * 72  # points
        skip += 1
        start, end = (BOX_X0, a.y + min(a.height / 2, 0.3)), (BOX_X0, b.y + min(b.height / 2, 0.15))
        ax.add_patch(FancyArrowPatch(start, end,
                                     connectionstyle=f"bar,armA={arm},armB={arm},fraction=0", **ARROW))


def _draw_key(ax, y: float) -> None:
    from matplotlib.patches import Rectangle

    x = MARGIN
    for label, face, edge in (("NNAPI partition (one colour each)", PARTITION_COLORS[0], "white"),
                              ("CPU", CPU_COLOR, "white"),
                              ("refused by the delegate", "white", REFUSED_COLOR)):
        ax.add_patch(Rectangle((x, y), 0.18, 0.13, facecolor=face, edgecolor=edge, linewidth=1.2))
        ax.text(x + 0.24, y + 0.065, label, fontsize=6.5, va="center", color=MUTED)
        x += 0.24 + len(label) * 6.5 * 0.55 / 72.0 + 0.25


def _draw_panel(ax, panel: Panel, panel_no: int, panels: int) -> None:
    lay = layout(panel)
    _draw_title(ax, lay)
    strip = _strip_cells(ax, panel, lay)
    op_type = {op.index: op.op_type for op in panel.model.operators}
    Group = _group_class()
    for pos, box in enumerate(lay.boxes):
        kids = [strip[op] for op in sorted(box.node.ops) if op in strip]
        kids += _node_artists(panel, box, pos, op_type)
        ax.add_artist(Group(node_gid(panel_no, panels, box.node), [_adopt(ax, k) for k in kids]))
    _draw_edges(ax, panel, lay.boxes)
    _draw_key(ax, lay.key_y)


# ----------------------------------------------------------------------------------------------------
# the figure


def panel_height(panel: Panel) -> float:
    return layout(panel).height


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
    """The diagram as ``svg`` or ``png`` (``dpi``) bytes."""
    import matplotlib as mpl

    with mpl.rc_context(render.RC):
        fig = draw(panels, title)
        if fmt == "png":
            fig.set_dpi(dpi)
            return render.encode_png(render.to_array(fig))
        return render.save_figure(fig, fmt)
