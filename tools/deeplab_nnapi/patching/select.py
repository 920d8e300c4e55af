"""Which patches a tree gets, and loading them safely (sha256, paths inside the tree)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from packaging.version import Version

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.manifest import Manifest, Patch, safe_relpath
from deeplab_nnapi.patching.patchfile import ParsedPatch, parse_patch
from deeplab_nnapi.patching.tfversion import TreeVersion


@dataclass
class LoadedPatch:
    patch: Patch
    data: bytes  # the verified bytes
    parsed: ParsedPatch
    file: Path  # a private copy of those bytes: what git apply reads (no change after the sha256 check)
    fallback: bool = False  # a variant for other versions, tried when the selected ones do not fit

    @property
    def name(self) -> str:
        return self.patch.name


def supported_text(manifest: Manifest, target: str) -> str:
    return "; ".join(manifest.supported(target)) or "(none)"


def select_for_tree(
    manifest: Manifest,
    target: str,
    version: Optional[TreeVersion],
    tree: Optional[Path] = None,
    layout: str = "tensorflow",
) -> List[List[Patch]]:
    """The groups of alternatives for a tree (UsageError when the manifest has none for it). A TensorFlow
    tree of unknown version (``version`` None) gets every variant for its layout as alternatives."""
    release: Optional[Version] = version.release if version is not None else None
    groups = manifest.select(target, release, layout)
    if not groups:
        where = f" ({tree})" if tree else ""
        if target == "tensorflow" and version is not None:
            raise UsageError(
                f"no TensorFlow patch for version {version.text}{where}; the manifest supports "
                f"TensorFlow {supported_text(manifest, target)}"
            )
        if target == "tensorflow":
            raise UsageError(f"the manifest {manifest.path} has no patches for {layout} trees{where}")
        raise UsageError(f"the manifest {manifest.path} has no {target} patches")
    return groups


def validate_paths(patch: Patch, parsed: ParsedPatch, tree: Path) -> None:
    """Refuse a patch that touches a path outside the tree or not listed in ``touches`` (UsageError).
    Where a touched path leads through symlinks is the business of :mod:`.treefiles` (the link policy)."""
    if not parsed.files:
        raise UsageError(f"patch {patch.name}: {patch.file} contains no diff")
    for rel in parsed.paths():
        if not safe_relpath(rel):
            raise UsageError(f"patch {patch.name}: touches {rel!r}, a path outside the tree (refused)")
        if rel not in patch.touches:
            raise UsageError(
                f"patch {patch.name}: touches {rel}, which the manifest's touches do not list (refused)"
            )


def load_groups(
    manifest: Manifest, target: str, groups: List[List[Patch]], tree: Path, workdir: Path
) -> List[List[LoadedPatch]]:
    """Verify and parse every selected patch (and its fallbacks); copy each into ``workdir``."""
    out = []
    for group in groups:
        loaded = []
        extra = manifest.fallbacks(target, group)
        for p in group + extra:
            data = p.verify()
            try:
                parsed = parse_patch(data)
            except ValueError as exc:
                raise UsageError(f"patch {p.name}: {p.file} is not a valid patch: {exc}") from None
            validate_paths(p, parsed, tree)
            copy = workdir / f"{p.index:04d}.patch"
            copy.write_bytes(data)
            loaded.append(LoadedPatch(p, data, parsed, copy, fallback=p in extra))
        out.append(loaded)
    return out


def group_paths(groups: List[List[LoadedPatch]]) -> List[str]:
    return sorted({p for g in groups for lp in g for p in lp.parsed.paths()})
