"""The scratch workspace a tree is planned in: a scratch index holding the current bytes of the files the
patches touch, and every way of trying a patch there (plain, reverse, ignoring whitespace, 3-way), none
of which touches the work tree."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Optional

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.gitops import GitResult, ScratchIndex, Tree
from deeplab_nnapi.patching.select import LoadedPatch


def crlf_like(old: Optional[bytes], new: Optional[bytes]) -> Optional[bytes]:
    """``new`` with the line ends of ``old`` on the lines the patch wrote (its lines come with LF): a line
    that replaces another gets that line's end, an added line the end of the line above it (the file's
    usual end at its top). Lines the patch did not touch keep theirs, whatever they are, so a file with
    mixed line ends changes on the patched lines only and a reverse gives it back byte for byte. None
    when there is nothing to do."""
    if not (old and new) or b"\r\n" not in old:
        return None
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    mid_a, mid_b = a[head : len(a) - tail], b[head : len(b) - tail]
    usual_crlf = old.count(b"\r\n") * 2 > old.count(b"\n")
    out = b[:head]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes():
        for k, line in enumerate(mid_b[j1:j2]):
            if tag != "equal" and line.endswith(b"\n") and not line.endswith(b"\r\n"):
                if tag == "replace":
                    ref: Optional[bytes] = mid_a[min(i1 + k, i2 - 1)]
                else:
                    above = head + i1 - 1
                    ref = a[above] if above >= 0 else None
                crlf = ref.endswith(b"\r\n") if ref is not None else usual_crlf
                if crlf:
                    line = line[:-1] + b"\r\n"
            out.append(line)
    fixed = b"".join(out + b[len(b) - tail :])
    return fixed if fixed != new else None


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
        self.base_commit = base_commit
        self.scratch = ScratchIndex(tree, base_commit)
        try:
            #: what the plan started from, per touched path: the bytes the run must find again before writing
            self.loaded = self.scratch.load_worktree(paths)
        except BaseException:
            self.scratch.close()
            raise

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
    def _base_entry(self, rel: str) -> Optional[str]:
        if not self.base_commit or rel.startswith("/"):
            return None
        out = self.tree.git("ls-tree", "-z", self.base_commit, "--", rel).out
        meta, _, name = out.rstrip("\0").partition("\t")
        parts = meta.split()
        if name != rel or len(parts) != 3 or parts[1] != "blob":
            return None
        return f"{parts[0]} {parts[2]}\t{rel}\n"

    def final_states(self, paths: Iterable[str]):
        out = {}
        for rel in paths:
            e = self.scratch.entry(rel)
            out[rel] = None if e is None else (self.tree.read_blob(e[1]), e[0])
        return out

    def write_tree(self) -> str:
        """The workspace as a git tree (``--commit``). A path patched through a symlink inside the tree
        is committed under its target's path; the link's own entry stays as in the base commit."""
        moved = [r for r in self.tree.resolved() if r.linked]
        if not moved:
            return self.scratch.write_tree()
        lines = []
        for res in moved:
            if res.real_rel is None:  # refused before planning; never reached
                raise UsageError(f"{res.rel}: --commit cannot record a file outside the tree ({res.real})")
            e = self.scratch.entry(res.rel)
            lines.append(f"0 {'0' * 40}\t{res.rel}\n")
            if e is not None:
                lines.append(f"{e[0]} {e[1]}\t{res.real_rel}\n")
            for link, _ in res.links:  # the links on the way keep their entries (as in the base commit)
                entry = self._base_entry(link)
                if entry is not None:
                    lines.append(entry)
        tmp = ScratchIndex(self.tree, None)
        try:
            if self.scratch.file.exists():
                tmp.file.write_bytes(self.scratch.file.read_bytes())
            self.tree.must("update-index", "--index-info", env=tmp.env, stdin="".join(lines).encode())
            return tmp.write_tree()
        finally:
            tmp.close()
