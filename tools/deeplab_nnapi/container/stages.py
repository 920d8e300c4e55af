"""Seconds per Dockerfile stage, read from an engine's build output as it streams.

Public API::

    from deeplab_nnapi.container.stages import StageTimer
    timer = StageTimer()
    for line in output:
        timer.feed(line)             # at the time each line arrives
    timer.finish()
    timer.table()                    # [("inputs", 3.1), ("sources", 41.0), ...], in build order

A stage starts at the line that begins it and ends where the next one starts (or at :meth:`finish`). The
lines that begin a stage:

* the classic builder (Docker Engine's API, Podman's compatible API): ``Step 3/40 : FROM base AS sources``;
* buildah: ``[3/8] STEP 1/22: FROM <image> AS sources`` (multi-stage) or ``STEP 1/5: FROM ...``.

A stage without ``AS name`` is named by its position. The clock is injectable for tests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

_CLASSIC = re.compile(r"^Step \d+/\d+ : FROM (\S+)(?:\s+AS\s+(\S+))?", re.I)
_BUILDAH = re.compile(r"^(?:\[(\d+)/\d+\] )?STEP \d+/\d+: FROM (\S+)(?:\s+AS\s+(\S+))?", re.I)


@dataclass
class StageTimer:
    clock: Callable[[], float] = time.monotonic
    stages: List[Tuple[str, float, Optional[float]]] = field(default_factory=list)  # (name, start, end)

    def _start(self, name: str) -> None:
        now = self.clock()
        self._close(now)
        self.stages.append((name, now, None))

    def _close(self, now: float) -> None:
        if self.stages and self.stages[-1][2] is None:
            name, start, _ = self.stages[-1]
            self.stages[-1] = (name, start, now)

    def feed(self, line: str) -> Optional[str]:
        """Note one output line; returns the stage name when the line starts a stage."""
        text = line.strip()
        m = _CLASSIC.match(text)
        if m:
            name = m.group(2) or f"stage {len(self.stages) + 1}"
        else:
            m = _BUILDAH.match(text)
            if not m:
                return None
            name = m.group(3) or (f"stage {m.group(1)}" if m.group(1) else f"stage {len(self.stages) + 1}")
        self._start(name)
        return name

    def finish(self) -> None:
        self._close(self.clock())

    def table(self) -> List[Tuple[str, float]]:
        """(stage, seconds) in the order the stages ran; a stage that is still running counts until now."""
        now = self.clock()
        return [(name, round((end if end is not None else now) - start, 1))
                for name, start, end in self.stages]

    def lines(self) -> List[str]:
        rows = self.table()
        if not rows:
            return []
        width = max(len(name) for name, _ in rows)
        out = [f"  {name:<{width}}  {secs:>8.1f} s" for name, secs in rows]
        out.append(f"  {'total':<{width}}  {sum(s for _, s in rows):>8.1f} s")
        return out
