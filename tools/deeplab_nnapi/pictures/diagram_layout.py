"""Where everything of a partition diagram's panel goes, in inches from the panel's top-left corner (y down):
the title lines, the op strip, the node boxes with their op cells and reason text, the key. Pure geometry,
no drawing: :mod:`deeplab_nnapi.pictures.diagram` draws what this places.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import List, Tuple

from deeplab_nnapi.nnapi.delegation import Node
from deeplab_nnapi.pictures.planview import REFUSED_COLOR, Panel

PANEL_W = 7.6  # inches
MARGIN = 0.2
GUTTER = 0.5  # left of the node boxes: arrows between nodes that are not next to each other
CELL_W, CELL_H, CELL_GAP = 0.4, 0.3, 0.035
BOX_PAD = 0.08
HEADER_H = 0.27
NODE_GAP = 0.24
TITLE_LINE = 0.2
STRIP_H = 0.3
STRIP_ROW = STRIP_H + 0.2  # a strip row and its tick labels
STRIP_MAX_PER_ROW = 96
REASON_PT = 6.5
REASON_LINE = 0.115
TEXT = "#222222"
MUTED = "#555555"
CHAR_W = 0.52 / 72.0  # average glyph width per point of font size, in inches (DejaVu Sans)

BOX_X0, BOX_X1 = MARGIN + GUTTER, PANEL_W - MARGIN


@dataclass
class Box:
    """A node's box: its op cells (op, x, y) and the wrapped reason text at (reason_x, reason_y)."""

    node: Node
    y: float
    height: float = 0.0
    cells: List[Tuple[int, float, float]] = field(default_factory=list)
    reason_lines: List[str] = field(default_factory=list)
    reason_x: float = 0.0
    reason_y: float = 0.0


@dataclass
class Layout:
    title: List[Tuple[str, float, str, str, float]]  # (text, font pt, weight, colour, y)
    strip_label_y: float
    strip_y: float
    strip_per_row: int
    strip_cell_w: float
    boxes: List[Box]
    key_y: float
    height: float


def chars_for(width_in: float, font_pt: float) -> int:
    """About how many characters of a font size fit in a width."""
    return max(12, int(width_in / (font_pt * CHAR_W)))


def reason_text(panel: Panel, node: Node) -> str:
    """Why a node runs on the CPU: the delegate's refusals, or the partition limit; "" for delegate nodes."""
    refused = panel.refusals()
    parts = [f"op {op}: {refused[op]}" for op in node.ops if op in refused]
    if parts:
        return "refused: " + "; ".join(parts)
    if node.is_delegate:
        return ""
    if any(op in panel.plan.not_delegated for op in node.ops):
        return "supported, but left on the CPU: more partitions than max_number_delegated_partitions"
    return "not offered to the delegate"


def title_lines(panel: Panel) -> List[Tuple[str, float, str, str]]:
    """(text, font pt, weight, colour) of the title block: the label, the options, the summary line."""
    ok = panel.plan.single_partition
    lines = [
        (panel.label, 10.0, "bold", TEXT),
        (panel.options_line(), 7.5, "normal", MUTED),
        (panel.summary_line(), 8.5, "bold", "#1e7b34" if ok else REFUSED_COLOR),
    ]
    if panel.profile_note:
        lines.append((panel.profile_note, 7.0, "normal", MUTED))
    return lines


def _box(panel: Panel, node: Node, y: float, cols: int) -> Box:
    ops = sorted(node.ops)
    box = Box(node, y)
    x = BOX_X0 + BOX_PAD
    single = len(ops) == 1 and not node.is_delegate  # a CPU op: its cell, the reason beside it
    if single:
        box.cells.append((ops[0], x, y + HEADER_H))
        body = CELL_H
    else:
        rows = (len(ops) + cols - 1) // cols
        for k, op in enumerate(ops):
            r, c = divmod(k, cols)
            box.cells.append((op, x + c * (CELL_W + CELL_GAP), y + HEADER_H + r * (CELL_H + CELL_GAP)))
        body = rows * (CELL_H + CELL_GAP) - CELL_GAP
    reason = reason_text(panel, node)
    if reason:
        box.reason_x = x + (CELL_W + 0.12 if single else 0.0)
        width = chars_for(BOX_X1 - BOX_PAD - box.reason_x, REASON_PT)
        box.reason_lines = textwrap.wrap(reason, width) or [""]
        text_h = len(box.reason_lines) * REASON_LINE
        if single:
            box.reason_y = y + HEADER_H
            body = max(body, text_h)
        else:
            box.reason_y = y + HEADER_H + body + 0.06
            body += 0.06 + text_h
    box.height = HEADER_H + body + BOX_PAD
    return box


def layout(panel: Panel) -> Layout:
    """Place a panel's parts."""
    y = MARGIN
    title = []
    for text, size, weight, color in title_lines(panel):
        title.append((text, size, weight, color, y))
        y += TITLE_LINE
    y += 0.12
    strip_label_y = y
    y += 0.2
    n_ops = panel.plan.num_ops
    rows = max(1, (n_ops + STRIP_MAX_PER_ROW - 1) // STRIP_MAX_PER_ROW)
    per_row = max(1, (n_ops + rows - 1) // rows)
    strip_y = y
    y += rows * STRIP_ROW + 0.15
    inner = BOX_X1 - BOX_X0 - 2 * BOX_PAD
    cols = max(1, int((inner + CELL_GAP) // (CELL_W + CELL_GAP)))
    boxes = []
    for node in panel.plan.nodes:
        box = _box(panel, node, y, cols)
        boxes.append(box)
        y += box.height + NODE_GAP
    key_y = y - NODE_GAP + 0.2
    return Layout(title, strip_label_y, strip_y, per_row, (PANEL_W - 2 * MARGIN) / per_row, boxes, key_y,
                  key_y + 0.25 + MARGIN)
