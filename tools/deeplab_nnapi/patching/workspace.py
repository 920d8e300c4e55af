"""The scratch workspace a tree is planned in: a scratch index holding the current bytes of the files the
patches touch, and every way of trying a patch there (plain, reverse, ignoring whitespace, 3-way), none
of which touches the work tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from deeplab_nnapi.patching.gitops import GitResult, ScratchIndex, Tree
from deeplab_nnapi.patching.select import LoadedPatch


def crlf_like(old: Optional[bytes], new: Optional[bytes]) -> Optional[bytes]:
    """``new`` with CRLF line ends where ``old`` had them (mostly), else None (nothing to do)."""
    if old and new and old.count(b"\r\n") * 2 > old.count(b"\n"):
        fixed = re.sub(rb"(?<!\r)\n", b"\r\n", new)
        return fixed if fixed != new else None
    return None


def apply_keeping_line_ends(scratch: ScratchIndex, lp: LoadedPatch, reverse: bool = False,
                            ignore_whitespace: bool = False) -> GitResult:
    """``git apply --cached`` in ``scratch``. Ignoring whitespace, the lines the patch adds come with its
    own line ends; in a file with CRLF line ends (a tree checked out on Windows) they get CRLF too."""
    paths = lp.parsed.paths() if ignore_whitespace else []
    before = {rel: scratch.content(rel) for rel in paths}
    res = scratch.apply(lp.file, reverse=reverse, ignore_whitespace=ignore_whitespace)
    if res.ok:
        for rel, old in before.items():
            fixed = crlf_like(old, scratch.content(rel))
            if fixed is not None:
                entry = scratch.entry(rel)
                sha = scratch.tree.hash_blob(fixed)
                scratch.tree.must("update-index", "--add", "--index-info", env=scratch.env,
                                  stdin=f"{entry[0]} {sha}\t{rel}\n".encode())
    return res


@dataclass
class Probe:
    """``git apply --check`` of a patch, forward and reverse."""

    loaded: LoadedPatch
    fwd: GitResult
    rev: GitResult

    @property
    def ambiguous(self) -> bool:
        return self.fwd.ok and self.rev.ok


class Workspace:
    def __init__(self, tree: Tree, base_commit: Optional[str], paths: Iterable[str]):
        self.tree = tree
        self.scratch = ScratchIndex(tree, base_commit)
        self.scratch.load_worktree(paths)

    def close(self) -> None:
        self.scratch.close()

    # -- contents
    def content(self, rel: str) -> Optional[bytes]:
        return self.scratch.content(rel)

    def blob(self, rel: str) -> Optional[str]:
        e = self.scratch.entry(rel)
        return None if e is None else e[1]

    def set_content(self, rel: str, data: bytes) -> None:
        e = self.scratch.entry(rel)
        mode = e[0] if e is not None else "100644"
        sha = self.tree.hash_blob(data)
        self.tree.must(
            "update-index",
            "--add",
            "--index-info",
            env=self.scratch.env,
            stdin=f"{mode} {sha}\t{rel}\n".encode(),
        )

    def entries(self, lp: LoadedPatch) -> str:
        return self.scratch.git("ls-files", "-s", "--", *lp.parsed.paths()).out

    # -- trying patches
    def probe(self, lp: LoadedPatch, ignore_whitespace: bool = False) -> Probe:
        fwd = self.scratch.apply(lp.file, check=True, ignore_whitespace=ignore_whitespace)
        rev = self.scratch.apply(lp.file, check=True, reverse=True, ignore_whitespace=ignore_whitespace)
        return Probe(lp, fwd, rev)

    def apply(self, lp: LoadedPatch, reverse: bool = False, ignore_whitespace: bool = False) -> GitResult:
        """Apply in the workspace. Ignoring whitespace, the lines the patch adds come with its own line
        ends; in a file with CRLF line ends (a tree checked out on Windows) they get CRLF too."""
        return apply_keeping_line_ends(self.scratch, lp, reverse=reverse, ignore_whitespace=ignore_whitespace)

    def marker_gone(self, lp: LoadedPatch) -> bool:
        """Whether the patch's ``fixed_marker`` no longer matches any file it touches (the check it
        relaxes is gone)."""
        marker = lp.patch.fixed_marker
        if not marker:
            return False
        seen = False
        for rel in lp.parsed.paths():
            content = self.content(rel)
            if content is None:
                continue
            seen = True
            if re.search(marker, content.decode("utf-8", "replace"), re.M):
                return False
        return seen

    # -- 3-way
    def _synthesize_postimages(self, lp: LoadedPatch) -> None:
        """Write the patch's post-image blobs into the object store when only the pre-images are there
        (a tree patched by 3-way): then a reverse 3-way merge can find its base."""
        entries = []
        for fd in lp.parsed.files:
            if not fd.old_blob or set(fd.old_blob) == {"0"} or not fd.old_path:
                continue
            res = self.tree.git("rev-parse", "--verify", "-q", f"{fd.old_blob}^{{blob}}")
            if not res.ok:
                return
            entries.append(f"100644 {res.out.strip()}\t{fd.old_path}\n")
        tmp = ScratchIndex(self.tree, None)
        try:
            if entries:
                tmp.tree.must(
                    "update-index", "--add", "--index-info", env=tmp.env, stdin="".join(entries).encode()
                )
            tmp.apply(lp.file)  # writes the post-image blobs; the result itself is not used
        finally:
            tmp.close()

    def why_no_3way(self, lp: LoadedPatch, reverse: bool) -> Optional[str]:
        """None when a 3-way merge is possible, else the reason why not."""
        if self.tree.plain:
            return "3-way merge not possible: the tree is not a git repository"
        if reverse and any(fd.new_blob and not self.tree.has_object(fd.new_blob) for fd in lp.parsed.files):
            self._synthesize_postimages(lp)
        for fd in lp.parsed.files:
            blob = fd.new_blob if reverse else fd.old_blob
            if not blob:
                return f"3-way merge not possible: the patch has no blob id for {fd.path}"
            if not self.tree.has_object(blob):
                return (
                    f"3-way merge not possible: {'post' if reverse else 'pre'}-image blob {blob} of "
                    f"{fd.path} is not in the repository"
                )
        return None

    def _no_unmerged(self) -> bool:
        res = self.scratch.git("ls-files", "-u")
        return res.ok and not res.out.strip()

    def try_3way(self, lp: LoadedPatch, reverse: bool) -> Optional[GitResult]:
        """Apply by 3-way merge: None when done, else the failed result (the workspace is unchanged)."""
        snap = self.scratch.snapshot()
        before = self.entries(lp)
        res = self.scratch.apply(lp.file, threeway=True, reverse=reverse)
        if res.ok and self._no_unmerged():
            if self.entries(lp) != before:
                return None
            self.scratch.restore(snap)
            return GitResult(1, "", "error: the merge changes nothing (the change is already there)")
        self.scratch.restore(snap)
        return res

    def applied_by_3way(self, lp: LoadedPatch) -> bool:
        """Whether a reverse 3-way merge would take the patch out cleanly, i.e. it is in the tree
        (applied earlier by 3-way to a drifted tree). Leaves the workspace as it was."""
        if self.why_no_3way(lp, reverse=True) is not None:
            return False
        snap = self.scratch.snapshot()
        before = self.entries(lp)
        try:
            res = self.scratch.apply(lp.file, threeway=True, reverse=True)
            # a merge of a tree without the patch succeeds too, but changes nothing
            return res.ok and self._no_unmerged() and self.entries(lp) != before
        finally:
            self.scratch.restore(snap)

    # -- result
    def final_states(self, paths: Iterable[str]):
        out = {}
        for rel in paths:
            e = self.scratch.entry(rel)
            out[rel] = None if e is None else (self.tree.read_blob(e[1]), e[0])
        return out

    def write_tree(self) -> str:
        return self.scratch.write_tree()
