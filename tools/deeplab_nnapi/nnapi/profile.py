"""Read benchmark_model's ``--enable_op_profiling`` output and compare it with a predicted plan.

benchmark_model prints, per profiling section ("Operator-wise Profiling Info for Regular Benchmark Runs:",
and in newer releases also one for the initialization), a "Run Order" table, a "Top by Computation Time"
table and a "Summary by node type". Tables are tab-separated with a header row of ``[column]`` names.
Only the Run Order table of the regular runs is used (falling back to the last Run Order table, then to
the last node table of any kind); surrounding log lines are ignored.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fileio import read_input

_SECTION = re.compile(r"^=+\s*(.*?)\s*=+\s*$")
_NAME_INDEX = re.compile(r"^(.*?):(\d+)\s*$")
_DELEGATE_TYPES = ("TfLiteNnapiDelegate",)


@dataclass(frozen=True)
class ProfileNode:
    type: str
    name: str  # the Name column without the ":index" suffix, e.g. "[ArgMax]"
    index: Optional[int]  # node index from the Name column (":70"), if printed
    avg_ms: float
    percent: Optional[float]

    @property
    def is_delegate(self) -> bool:
        return self.type in _DELEGATE_TYPES or self.type.endswith("Delegate") or "Delegate" in self.type

    def to_json(self) -> Dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "index": self.index,
            "avg_ms": self.avg_ms,
            "percent": self.percent,
        }


@dataclass
class Profile:
    nodes: List[ProfileNode] = field(default_factory=list)
    source: str = ""
    section: str = ""

    @property
    def delegate_nodes(self) -> List[ProfileNode]:
        return [n for n in self.nodes if n.is_delegate]

    @property
    def cpu_nodes(self) -> List[ProfileNode]:
        return [n for n in self.nodes if not n.is_delegate]

    @property
    def total_ms(self) -> float:
        return sum(n.avg_ms for n in self.nodes)

    @property
    def cpu_fallback_percent(self) -> float:
        """Share of the run spent in non-delegate nodes (from the [%] column, else from avg ms)."""
        if self.nodes and all(n.percent is not None for n in self.nodes):
            total = sum(n.percent for n in self.nodes)  # type: ignore[misc]
            cpu = sum(n.percent for n in self.cpu_nodes)  # type: ignore[misc]
        else:
            total = self.total_ms
            cpu = sum(n.avg_ms for n in self.cpu_nodes)
        return round(100.0 * cpu / total, 1) if total > 0 else 0.0

    def to_json(self) -> Dict[str, Any]:
        return {
            "source": self.source,
            "nodes": [n.to_json() for n in self.nodes],
            "node_count": len(self.nodes),
            "delegate_nodes": len(self.delegate_nodes),
            "cpu_nodes": len(self.cpu_nodes),
            "cpu_fallback_percent": self.cpu_fallback_percent,
            "total_avg_ms": round(self.total_ms, 3),
        }


def _header_columns(line: str) -> Optional[List[str]]:
    cols = re.findall(r"\[([^\]]+)\]", line)
    if len(cols) >= 3 and any(c.strip().lower() == "node type" for c in cols):
        return [c.strip().lower() for c in cols]
    return None


def _parse_float(text: str) -> Optional[float]:
    text = text.strip().rstrip("%")
    try:
        return float(text)
    except ValueError:
        return None


def _parse_row(line: str, columns: Sequence[str]) -> Optional[ProfileNode]:
    cells = [c.strip() for c in line.split("\t")]
    while cells and cells[0] == "":
        cells.pop(0)
    if len(cells) < len(columns):
        # Some builds separate by runs of spaces; the Name column may hold ", ".
        cells = re.split(r"\s{2,}|\t", line.strip())
        if len(cells) < len(columns):
            return None
    if len(cells) > len(columns):  # a Name with tabs: keep it whole
        cells = cells[: len(columns) - 1] + ["\t".join(cells[len(columns) - 1 :])]
    row = dict(zip(columns, cells))
    node_type = row.get("node type", "").strip()
    avg = _parse_float(row.get("avg ms", ""))
    if not node_type or avg is None:
        return None
    pct = _parse_float(row["%"]) if "%" in row else None
    raw_name = row.get("name", "").strip()
    index = None
    m = _NAME_INDEX.match(raw_name)
    if m:
        raw_name, index = m.group(1), int(m.group(2))
    return ProfileNode(node_type, raw_name, index, avg, pct)


def parse_profile_text(text: str, source: str = "<profile>") -> Profile:
    """Parse benchmark_model output. Raises UsageError when no node table is found."""
    tables: List[Tuple[str, str, List[ProfileNode]]] = []  # (profiling section, table title, rows)
    section = ""
    title = ""
    columns: Optional[List[str]] = None
    rows: List[ProfileNode] = []

    def close() -> None:
        nonlocal columns, rows
        if columns is not None and rows:
            tables.append((section, title, rows))
        columns, rows = None, []

    for raw in text.splitlines():
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if "Profiling Info for" in stripped:
            close()
            section = stripped
            continue
        m = _SECTION.match(stripped)
        if m and stripped.startswith("="):
            close()
            title = m.group(1)
            continue
        cols = _header_columns(line)
        if cols:
            close()
            columns = cols
            continue
        if columns is None:
            continue
        if not stripped:
            close()
            continue
        node = _parse_row(line, columns)
        if node is None:
            close()
            continue
        rows.append(node)
    close()
    node_tables = [t for t in tables if "summary by node type" not in t[1].lower()]
    if not node_tables:
        raise UsageError(f"{source}: no benchmark_model op-profiling table (run order) found")

    def pick() -> Tuple[str, str, List[ProfileNode]]:
        run_order = [t for t in node_tables if "run order" in t[1].lower()]
        regular = [t for t in run_order if "regular" in t[0].lower()]
        if regular:
            return regular[-1]
        not_init = [t for t in run_order if "initialization" not in t[0].lower()]
        if not_init:
            return not_init[-1]
        if run_order:
            return run_order[-1]
        return node_tables[-1]

    sec, ttl, chosen = pick()
    return Profile(list(chosen), source, f"{sec} {ttl}".strip())


def load_profile(path: Union[str, Path]) -> Profile:
    p = Path(path)
    raw = read_input(p, "a profile")
    # Windows PowerShell's `adb shell ... > profile.txt` writes UTF-16 with a byte-order mark
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return parse_profile_text(raw.decode(codec, "replace"), str(p))
    if b"\x00" in raw[:4096]:
        raise UsageError(f"{p}: binary file, not benchmark_model output")
    return parse_profile_text(raw.decode("utf-8", "replace"), str(p))


@dataclass(frozen=True)
class Difference:
    position: int  # 0-based position in the execution order
    predicted: str
    profiled: str
    what: str

    def to_json(self) -> Dict[str, Any]:
        return {
            "position": self.position,
            "predicted": self.predicted,
            "profiled": self.profiled,
            "what": self.what,
        }


def compare(plan_nodes: Sequence[Any], profile: Profile) -> List[Difference]:
    """Differences between predicted nodes (``.type``, ``.index``, ``.name``) and a profile, in order."""
    diffs: List[Difference] = []
    n = max(len(plan_nodes), len(profile.nodes))
    for i in range(n):
        pred = plan_nodes[i] if i < len(plan_nodes) else None
        prof = profile.nodes[i] if i < len(profile.nodes) else None
        p_text = f"{pred.type} {pred.name}:{pred.index}" if pred is not None else "-"
        q_text = (
            f"{prof.type} {prof.name}" + (f":{prof.index}" if prof and prof.index is not None else "")
            if prof is not None
            else "-"
        )
        if pred is None:
            diffs.append(Difference(i, p_text, q_text, "node in the profile only"))
            continue
        if prof is None:
            diffs.append(Difference(i, p_text, q_text, "node predicted only"))
            continue
        what = []
        if pred.type != prof.type:
            what.append("type")
        if prof.index is not None and pred.index != prof.index:
            what.append("node index")
        if prof.name and pred.name != prof.name:
            what.append("output names")
        if what:
            diffs.append(Difference(i, p_text, q_text, " and ".join(what) + " differ"))
    return diffs
