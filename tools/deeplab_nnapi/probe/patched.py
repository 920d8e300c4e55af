"""``--delegate patched``: our patch set applied to a scratch copy of the files the probe is built from.

The user's tree is never written. Only what the build reads is copied (the include closure, the schemas
flatc regenerates, and the files that state the tree's version and layout), then the patch engine of
``tools/apply_patches.py`` applies the delegate patch to the copy exactly as it would to the tree: the same
variant selection by version and shape, the same verification.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.patching.engine import RunOptions, TreeJob, run_jobs
from deeplab_nnapi.patching.manifest import load_manifest
from deeplab_nnapi.patching.tfversion import parse_request
from deeplab_nnapi.probe.sources import ProbeTree, SourceSet

#: Files that tell the patch engine which tree and version this is, copied when present.
VERSION_FILES = (
    "tensorflow/core/public/version.h",
    "tensorflow/core/public/release_version.h",
    "tensorflow/tf_version.bzl",
    "litert/version.bzl",
    "litert/core/version.h",
)


@dataclass(frozen=True)
class PatchedCopy:
    root: Path
    layout: Optional[str]
    version: Optional[str]
    shape: Optional[str]
    states: tuple  # (patch file, state, strategy) per patch

    def to_json(self) -> dict:
        return {
            "layout": self.layout,
            "version": self.version,
            "shape": self.shape,
            "patches": [{"patch": p, "state": s, "strategy": st} for p, s, st in self.states],
        }


def copy_for_build(tree: ProbeTree, sources: SourceSet, dest: Path) -> None:
    """Copy what the build reads from ``tree`` to ``dest`` (same relative paths)."""
    files = set(sources.sources) | set(sources.headers) | {schema for _, schema in sources.generated}
    files |= {f for f in VERSION_FILES if (tree.root / f).is_file()}
    for rel in sorted(files):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tree.root / rel, target)


def patch_copy(
    tree: ProbeTree,
    sources: SourceSet,
    dest: Path,
    log: Optional[Callable[[str], None]] = None,
    manifest_path: Optional[Path] = None,
) -> PatchedCopy:
    """A patched copy of the build's files at ``dest``. Raises CheckFailed when our patches do not apply."""
    copy_for_build(tree, sources, dest)
    manifest = load_manifest(manifest_path)
    report = run_jobs(manifest, [TreeJob("tensorflow", dest, parse_request("2.x"))], RunOptions(log=log))
    treport = report.trees[0]
    if not report.ok:
        raise CheckFailed(
            f"{tree.root}: our delegate patch does not apply: {report.first_error() or 'conflict'}"
        )
    states = tuple((p.name, p.state, p.strategy) for p in treport.patches)
    if not states:
        raise UsageError(f"{tree.root}: no patch of the manifest is meant for this tree")
    return PatchedCopy(dest, treport.layout, treport.version, treport.shape, states)
