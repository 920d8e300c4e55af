"""Whether a tree carries our patches, asked without changing anything (for other tools)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.patching.engine import RunOptions, TreeJob, run_jobs
from deeplab_nnapi.patching.manifest import Manifest, load_manifest
from deeplab_nnapi.patching.report import PatchReport
from deeplab_nnapi.patching.tfversion import parse_request


@dataclass
class TreeStatus:
    """Whether a tree carries our patches. ``state`` is one of:

    * ``applied``: every selected patch is in the tree (or its check is gone upstream, or the file has
      nothing to change);
    * ``applicable``: not all are in, but the missing ones would apply;
    * ``conflict``: some patch neither is in the tree nor applies;
    * ``fixed-upstream``: every selected patch's check is gone upstream (nothing to do);
    * ``interrupted``: an earlier run was killed half-way; apply_patches repairs it.
    """

    state: str
    message: str
    patches: List[PatchReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in ("applied", "fixed-upstream")


def tree_status(
    tree: Path,
    target: str,
    tf_version: Optional[str] = None,
    manifest: Optional[Manifest] = None,
    follow_symlinks: bool = False,
) -> TreeStatus:
    """Check (without changing anything) whether ``tree`` carries the ``target`` patches.

    ``target`` is "tensorflow" or "models". For TensorFlow the tree's own version selects the
    patches; ``tf_version`` ("2.x", "2.N", "2.N.M"), when given, must match it. Local edits are
    allowed. Symlinks are treated as by apply_patches (``follow_symlinks`` = ``--follow-symlinks``).
    Raises :class:`deeplab_nnapi.errors.UsageError` on bad input (not a tree, unknown version, manifest
    or patch file problems, a refused symlink, an unreadable file).
    """
    if target not in ("tensorflow", "models"):
        raise UsageError(f"target {target!r} is not one of tensorflow, models")
    manifest = manifest if manifest is not None else load_manifest()
    request = parse_request(tf_version) if tf_version else None
    job = TreeJob(target=target, path=Path(tree), request=request)
    try:
        opts = RunOptions(check=True, allow_dirty=True, follow_symlinks=follow_symlinks)
        report = run_jobs(manifest, [job], opts)
    except CheckFailed as exc:
        return TreeStatus("interrupted", str(exc))
    tr = report.trees[0]
    states = [p.state for p in tr.patches]
    if any(s == "conflict" for s in states):
        bad = next(p for p in tr.patches if p.state == "conflict")
        return TreeStatus("conflict", bad.message, tr.patches)
    if states and all(p.strategy == "fixed-upstream" for p in tr.patches):
        return TreeStatus(
            "fixed-upstream", f"{tree}: the checks our {target} patches relax are gone upstream", tr.patches
        )
    if any(s == "would-apply" for s in states):
        todo = ", ".join(p.name for p in tr.patches if p.state == "would-apply")
        return TreeStatus("applicable", f"{tree}: not patched yet; would apply: {todo}", tr.patches)
    names = ", ".join(p.name for p in tr.patches if p.state != "not-present")
    return TreeStatus("applied", f"{tree}: carries {names}", tr.patches)
