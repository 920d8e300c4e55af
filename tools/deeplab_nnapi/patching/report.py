"""What a patch run reports: per patch, per tree, per run (the ``--json`` output of apply_patches)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Optional

#: Patch states that leave a tree as it should be.
OK_STATES = (
    "applied",
    "would-apply",
    "already-applied",
    "fixed-upstream",
    "reversed",
    "would-reverse",
    "not-applied",
    "not-needed",
    "not-present",
)


@dataclass
class PatchReport:
    name: str
    target: str
    file: str
    order: int
    # clean | clean-ignore-whitespace | 3way | rule | already-applied | fixed-upstream | not-applied |
    # not-needed | not-present | None
    strategy: Optional[str]
    # applied | would-apply | already-applied | fixed-upstream | reversed | would-reverse | not-applied |
    # not-needed (the file has nothing the rule changes) | not-present (an optional file the tree lacks) |
    # conflict | not-reached
    state: str
    message: str = ""
    commit: Optional[str] = None
    alternatives: List[str] = field(default_factory=list)
    hunk: Optional[str] = None
    path: Optional[str] = None
    shape: Optional[str] = None  # TensorFlow: the upstream shape of the check this variant fits
    sites: List[str] = field(default_factory=list)  # rule strategy: the call sites changed

    @property
    def ok(self) -> bool:
        return self.state in OK_STATES

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TreeReport:
    target: str
    path: str
    git: bool
    version: Optional[str] = None
    requested: Optional[str] = None
    layout: Optional[str] = None  # tensorflow | tflite-only | litert | models
    version_source: Optional[str] = None  # where the version came from, or why it is trusted/unknown
    patches: List[PatchReport] = field(default_factory=list)
    changed_files: List[str] = field(default_factory=list)
    head_before: Optional[str] = None
    head_after: Optional[str] = None
    recovered: Optional[str] = None  # what was done about an interrupted earlier run
    #: touched paths that are symlinks (patched through) or have hard links: {path, links, file, inside,
    #: hard_links}; changed_files names the file written (the link's target)
    links: List[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.patches)

    @property
    def shape(self) -> Optional[str]:
        return next((p.shape for p in self.patches if p.shape), None)

    def to_json(self) -> dict:
        d = asdict(self)
        d["shape"] = self.shape
        d["ok"] = self.ok
        return d


@dataclass
class RunReport:
    mode: str
    commit: bool
    manifest: str
    trees: List[TreeReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.trees)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def first_error(self) -> Optional[str]:
        for t in self.trees:
            for p in t.patches:
                if p.state == "conflict":
                    return p.message
        return None

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "commit": self.commit,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "manifest": self.manifest,
            "trees": [t.to_json() for t in self.trees],
        }
