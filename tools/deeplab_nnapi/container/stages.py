"""Seconds per Dockerfile stage, read from an engine's build output as it streams.

Public API::

    from deeplab_nnapi.container.stages import StageTimer
    timer = StageTimer()
    for line in output:
        timer.feed(line)             # at the time each line arrives
    timer.finish()
    timer.table()                    # [("inputs", 3.1), ("sources", 41.0), ...], in the order stages began

Every second between two output lines goes to the stage that printed the last step line: the classic
builder (Docker Engine's API, Podman's compatible API) runs one step at a time and prints
``Step 3/40 : FROM base AS sources`` when a stage begins; buildah prefixes every step line with its stage
(``[3/8] STEP 5/22: RUN ...``, ``[8/8] COMMIT ...``; ``[3/8] STEP 1/22: FROM <image> AS sources`` names
stage 3) and, with its
default ``--jobs 1``, runs one stage at a time, switching when a stage waits for another (``COPY --from``),
so its stages' lines may interleave. A step's own output (a RUN's lines) has no prefix and goes to the stage
of the step. The stages' seconds add up to the build's. A stage without ``AS name`` is named by its number.
The clock is injectable for tests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

_CLASSIC = re.compile(r"^Step \d+/\d+ : FROM (\S+)(?:\s+AS\s+(\S+))?", re.I)
_BUILDAH = re.compile(r"^(?:\[(\d+)/\d+\] )?STEP \d+/\d+: (.*)$", re.I)
_BUILDAH_COMMIT = re.compile(r"^\[(\d+)/\d+\] COMMIT\b")
_FROM = re.compile(r"^FROM (\S+)(?:\s+AS\s+(\S+))?", re.I)


@dataclass
class StageTimer:
    clock: Callable[[], float] = time.monotonic
    seconds: Dict[str, float] = field(default_factory=dict)  # in the order stages began
    current: Optional[str] = None
    _last: Optional[float] = None
    _names: Dict[str, str] = field(default_factory=dict)  # buildah stage number -> name
    _unnumbered: int = 0

    def _charge(self, now: float) -> None:
        if self.current is not None and self._last is not None:
            self.seconds[self.current] = self.seconds.get(self.current, 0.0) + (now - self._last)
        self._last = now

    def _switch(self, name: str) -> None:
        self.current = name
        self.seconds.setdefault(name, 0.0)

    def feed(self, line: str) -> Optional[str]:
        """Note one output line; returns the stage it belongs to when it is a step line."""
        self._charge(self.clock())
        text = line.strip()
        m = _CLASSIC.match(text)
        if m:
            self._unnumbered += 1
            self._switch(m.group(2) or f"stage {self._unnumbered}")
            return self.current
        m = _BUILDAH_COMMIT.match(text)
        if m:  # the last stage's image is committed (and copied out) after its steps
            self._switch(self._names.get(m.group(1), f"stage {m.group(1)}"))
            return self.current
        m = _BUILDAH.match(text)
        if not m:
            return None
        number, step = m.group(1), m.group(2)
        f = _FROM.match(step)
        if number is None:  # a single-stage build, or a stage of an older buildah without the prefix
            if f:
                self._unnumbered += 1
                self._switch(f.group(2) or f"stage {self._unnumbered}")
            return self.current
        if f:
            self._names[number] = f.group(2) or f"stage {number}"
        self._switch(self._names.get(number, f"stage {number}"))
        return self.current

    def finish(self) -> None:
        self._charge(self.clock())
        self._last = None

    def table(self) -> List[Tuple[str, float]]:
        """(stage, seconds) in the order the stages began."""
        return [(name, round(secs, 1)) for name, secs in self.seconds.items()]

    def lines(self) -> List[str]:
        rows = self.table()
        if not rows:
            return []
        width = max(len(name) for name, _ in rows)
        out = [f"  {name:<{width}}  {secs:>8.1f} s" for name, secs in rows]
        out.append(f"  {'total':<{width}}  {sum(s for _, s in rows):>8.1f} s")
        return out
