"""The patch engine: select the patches for a tree, check them, apply/reverse/commit them atomically.

How a run goes (for every tree given, TensorFlow first, then tensorflow/models):

1. **select** the manifest's patches for the target (TensorFlow: by the tree's own version), as
   groups of alternatives in ``order`` (see :mod:`deeplab_nnapi.patching.manifest`);
2. **verify** every selected patch file: sha256 against the manifest, every path it touches relative,
   without ``..``, listed in ``touches`` and not escaping the tree through a symlink (else exit 2);
3. refuse a tree with local changes in a touched file unless ``allow_dirty``;
4. **plan** in a scratch index (see :mod:`deeplab_nnapi.patching.gitops`): for each group, in order, pick the
   first alternative that is already applied or applies cleanly; else (TensorFlow) the first variant
   for another version at the same position that does; else one recognised as applied by a reverse
   3-way merge (a drifted tree patched earlier); else report *fixed upstream* when
   the patch's ``fixed_marker`` no longer matches the touched file; else try ``git apply --3way``
   when the pre-image blobs are in the repository; else the group does not apply: the plan stops
   with a message naming patch, file and hunk;
5. only when every tree planned without a conflict (and not ``--check``): **write** the changed
   files into the work trees (each file atomically; any failure puts every file back), and in
   ``--commit`` mode move the branch to the commits made for the patches.

So a failing patch k of n leaves every tree byte-identical to how it started, and a second run finds
every patch "already-applied" and changes nothing.

Strategies reported per patch: ``clean``, ``3way``, ``already-applied``, ``fixed-upstream``
(and for ``--reverse``: ``clean``, ``3way``, ``not-applied``, ``fixed-upstream``).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from packaging.version import Version

from deeplab_nnapi.errors import CheckFailed, ToolError, UsageError
from deeplab_nnapi.patching.gitops import (
    MailInfo,
    ScratchIndex,
    Tree,
    WorktreeWriter,
    commit_tree,
    mailinfo,
    move_head,
    reset_paths,
)
from deeplab_nnapi.patching.manifest import Manifest, Patch, load_manifest, safe_relpath
from deeplab_nnapi.patching.tfversion import (
    TreeVersion,
    VersionRequest,
    check_request,
    parse_request,
    read_tree_version,
)

__all__ = [
    "TreeStatus",
    "tree_status",
    "PatchReport",
    "TreeReport",
    "TreeJob",
    "RunOptions",
    "run_jobs",
    "parse_patch",
    "ParsedPatch",
    "select_for_tree",
    "ConflictError",
]

# ------------------------------------------------------------------------------------------------
# Public contract for other modules


@dataclass
class TreeStatus:
    """Whether a tree carries our patches. ``state`` is one of:

    * ``applied``: every selected patch is in the tree (or its check is gone upstream);
    * ``applicable``: not all are in, but the missing ones would apply;
    * ``conflict``: some patch neither is in the tree nor applies;
    * ``fixed-upstream``: every selected patch's check is gone upstream (nothing to do).
    """

    state: str
    message: str
    patches: List[PatchReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in ("applied", "fixed-upstream")


def tree_status(
    tree: Path, target: str, tf_version: Optional[str] = None, manifest: Optional[Manifest] = None
) -> TreeStatus:
    """Check (without changing anything) whether ``tree`` carries the ``target`` patches.

    ``target`` is "tensorflow" or "models". For TensorFlow the tree's own version selects the
    patches; ``tf_version`` ("2.x", "2.N", "2.N.M"), when given, must match it. Local edits are
    allowed. Raises :class:`deeplab_nnapi.errors.UsageError` on bad input (not a tree, unknown
    version, manifest or patch file problems).
    """
    if target not in ("tensorflow", "models"):
        raise UsageError(f"target {target!r} is not one of tensorflow, models")
    manifest = manifest if manifest is not None else load_manifest()
    request = parse_request(tf_version) if tf_version else None
    job = TreeJob(target=target, path=Path(tree), request=request)
    report = run_jobs(manifest, [job], RunOptions(check=True, allow_dirty=True))
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
    names = ", ".join(p.name for p in tr.patches)
    return TreeStatus("applied", f"{tree}: carries {names}", tr.patches)


# ------------------------------------------------------------------------------------------------
# Patch files


@dataclass
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header: str


@dataclass
class FileDiff:
    old_path: Optional[str]  # None for a created file
    new_path: Optional[str]  # None for a deleted file
    old_blob: Optional[str] = None
    new_blob: Optional[str] = None
    hunks: List[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    def paths(self) -> List[str]:
        return [p for p in dict.fromkeys([self.old_path, self.new_path]) if p]


@dataclass
class ParsedPatch:
    files: List[FileDiff]

    def paths(self) -> List[str]:
        out: List[str] = []
        for f in self.files:
            out.extend(p for p in f.paths() if p not in out)
        return out

    def file(self, path: str) -> Optional[FileDiff]:
        for f in self.files:
            if path in (f.old_path, f.new_path):
                return f
        return None


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDEX = re.compile(r"^index ([0-9a-f]+)\.\.([0-9a-f]+)")


def _unquote(raw: str) -> str:
    raw = raw.rstrip("\n")
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        body = raw[1:-1].encode("ascii", "backslashreplace").decode("unicode_escape")
        return body.encode("latin-1").decode("utf-8", "replace")
    return raw.split("\t")[0]


def _strip_prefix(p: str) -> Optional[str]:
    if p == "/dev/null":
        return None
    if p.startswith(("a/", "b/")):
        return p[2:]
    return p


def parse_patch(data: bytes) -> ParsedPatch:
    """Files, blob ids and hunks of a (git) unified diff. Raises ValueError on a malformed hunk."""
    lines = data.decode("utf-8", "replace").splitlines()
    files: List[FileDiff] = []
    cur: Optional[FileDiff] = None
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if line.startswith("diff --git "):
            m = re.match(r'^diff --git ("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$', line)
            old = new = None
            if m:
                old, new = _strip_prefix(_unquote(m.group(1))), _strip_prefix(_unquote(m.group(2)))
            cur = FileDiff(old_path=old, new_path=new)
            files.append(cur)
        elif cur is not None and line.startswith("new file mode"):
            cur.old_path = None
        elif cur is not None and line.startswith("deleted file mode"):
            cur.new_path = None
        elif cur is not None and line.startswith(("rename from ", "copy from ")):
            cur.old_path = _unquote(line.split(" from ", 1)[1])
        elif cur is not None and line.startswith(("rename to ", "copy to ")):
            cur.new_path = _unquote(line.split(" to ", 1)[1])
        elif cur is not None and (m := _INDEX.match(line)):
            cur.old_blob, cur.new_blob = m.group(1), m.group(2)
        elif line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            old = _strip_prefix(_unquote(line[4:]))
            new = _strip_prefix(_unquote(lines[i + 1][4:]))
            if cur is None or cur.hunks:
                cur = FileDiff(old_path=old, new_path=new)
                files.append(cur)
            else:
                cur.old_path, cur.new_path = old, new
            i += 1
        elif line.startswith("@@ ") and cur is not None:
            m = _HUNK.match(line)
            if not m:
                raise ValueError(f"malformed hunk header: {line}")
            h = Hunk(
                int(m.group(1)),
                int(m.group(2) if m.group(2) is not None else 1),
                int(m.group(3)),
                int(m.group(4) if m.group(4) is not None else 1),
                line,
            )
            cur.hunks.append(h)
            old_left, new_left = h.old_len, h.new_len
            while (old_left > 0 or new_left > 0) and i + 1 < n:
                i += 1
                body = lines[i]
                tag = body[:1]
                if tag == "\\":
                    continue
                if tag in (" ", ""):
                    old_left -= 1
                    new_left -= 1
                elif tag == "-":
                    old_left -= 1
                elif tag == "+":
                    new_left -= 1
                else:
                    raise ValueError(f"malformed hunk line {i + 1}: {body[:40]!r}")
            if old_left > 0 or new_left > 0:
                raise ValueError(f"truncated hunk {line}")
        i += 1
    return ParsedPatch(files)


def _validate_paths(patch: Patch, parsed: ParsedPatch, tree: Path) -> None:
    if not parsed.files:
        raise UsageError(f"patch {patch.name}: {patch.file} contains no diff")
    root = tree.resolve()
    for rel in parsed.paths():
        if not safe_relpath(rel):
            raise UsageError(f"patch {patch.name}: touches {rel!r}, a path outside the tree (refused)")
        if rel not in patch.touches:
            raise UsageError(
                f"patch {patch.name}: touches {rel}, which the manifest's touches do not list (refused)"
            )
        parent = (tree / rel).parent
        try:
            real_parent = parent.resolve()
        except OSError:  # pragma: no cover
            continue
        if parent.exists() and root != real_parent and root not in real_parent.parents:
            raise UsageError(f"patch {patch.name}: {rel} leads outside the tree through a symlink (refused)")


# ------------------------------------------------------------------------------------------------
# Reports


@dataclass
class PatchReport:
    name: str
    target: str
    file: str
    order: int
    strategy: Optional[str]  # clean | 3way | already-applied | fixed-upstream | not-applied | None
    state: str  # applied | would-apply | already-applied | fixed-upstream | reversed | would-reverse |
    #             not-applied | conflict | not-reached
    message: str = ""
    commit: Optional[str] = None
    alternatives: List[str] = field(default_factory=list)
    hunk: Optional[str] = None
    path: Optional[str] = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TreeReport:
    target: str
    path: str
    git: bool
    version: Optional[str] = None
    requested: Optional[str] = None
    patches: List[PatchReport] = field(default_factory=list)
    changed_files: List[str] = field(default_factory=list)
    head_before: Optional[str] = None
    head_after: Optional[str] = None

    @property
    def ok(self) -> bool:
        return all(p.state not in ("conflict", "not-reached") for p in self.patches)

    def to_json(self) -> dict:
        d = asdict(self)
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


class ConflictError(CheckFailed):
    """A patch does not apply (exit 1); carries the run report."""

    def __init__(self, message: str, report: RunReport):
        super().__init__(message)
        self.report = report


# ------------------------------------------------------------------------------------------------
# Engine


@dataclass
class TreeJob:
    target: str  # "tensorflow" | "models"
    path: Path
    request: Optional[VersionRequest] = None  # TensorFlow only


@dataclass
class RunOptions:
    check: bool = False
    reverse: bool = False
    commit: bool = False
    allow_dirty: bool = False
    log: Optional[Callable[[str], None]] = None

    @property
    def mode(self) -> str:
        return ("reverse" if self.reverse else "apply") + ("-check" if self.check else "")


def _supported_text(manifest: Manifest, target: str) -> str:
    return "; ".join(manifest.supported(target)) or "(none)"


def select_for_tree(
    manifest: Manifest, target: str, version: Optional[TreeVersion], tree: Optional[Path] = None
) -> List[List[Patch]]:
    """The groups of alternatives for a tree (UsageError when the manifest has none for it)."""
    release: Optional[Version] = version.release if version is not None else None
    groups = manifest.select(target, release)
    if not groups:
        where = f" ({tree})" if tree else ""
        if target == "tensorflow" and version is not None:
            raise UsageError(
                f"no TensorFlow patch for version {version.text}{where}; the manifest supports "
                f"TensorFlow {_supported_text(manifest, target)}"
            )
        raise UsageError(f"the manifest {manifest.path} has no {target} patches")
    return groups


@dataclass
class _Loaded:
    patch: Patch
    data: bytes  # the verified bytes
    parsed: ParsedPatch
    file: Path  # a private copy of those bytes: what git apply reads (no change after the sha256 check)
    fallback: bool = False  # a variant for other versions, tried when the selected ones do not fit


class _Probe:
    def __init__(self, loaded: _Loaded, fwd, rev):
        self.loaded = loaded
        self.fwd = fwd
        self.rev = rev


def _describe_failure(lp: _Loaded, tree: Tree, err: str, reverse: bool) -> tuple:
    """(message tail, file, hunk text) from git apply's stderr."""
    if "corrupt patch" in err or "No valid patches" in err or "unrecognized input" in err:
        raise UsageError(
            f"patch {lp.patch.name}: {lp.patch.file} is not a valid patch: {_last_error_line(err)}"
        )
    m = re.search(r"error: patch failed: (.+):(\d+)$", err, re.M)
    if m:
        path, line = m.group(1), int(m.group(2))
        fd = lp.parsed.file(path)
        hunk_txt = None
        if fd is not None and fd.hunks:
            starts = [(h.new_start if reverse else h.old_start) for h in fd.hunks]
            idx = (
                starts.index(line)
                if line in starts
                else max((k for k, s in enumerate(starts) if s <= line), default=0)
            )
            h = fd.hunks[idx]
            hunk_txt = f"hunk #{idx + 1} of {len(fd.hunks)} ({h.header.split(' @@')[0]} @@)"
        searched = _searched_line(err)
        tail = f"{path}: {hunk_txt or f'hunk at line {line}'} does not match"
        if searched:
            tail += f" (expected text starting {searched!r})"
        return tail, path, hunk_txt
    m = re.search(r"error: (.+): does not exist in index", err)
    if m:
        return (
            f"{m.group(1)}: file is missing from the tree (is {tree.path} the top of the tree?)",
            m.group(1),
            None,
        )
    m = re.search(r"error: (.+): already exists in (?:index|working directory)", err)
    if m:
        return f"{m.group(1)}: file already exists", m.group(1), None
    m = re.search(r"Applied patch to '(.+)' with conflicts", err)
    if m:
        return f"{m.group(1)}: 3-way merge left conflicts", m.group(1), None
    return _last_error_line(err) or "git apply failed", None, None


def _last_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    return lines[-1][len("error:") :].strip() if lines else (err.strip().splitlines() or [""])[-1]


def _searched_line(err: str) -> Optional[str]:
    lines = err.splitlines()
    for k, ln in enumerate(lines):
        if ln.startswith("error: while searching for:"):
            for cand in lines[k + 1 :]:
                if cand.startswith("error:"):
                    return None
                if cand.strip():
                    s = cand.strip()
                    return s if len(s) <= 60 else s[:57] + "..."
    return None


class _Planner:
    def __init__(
        self, tree: Tree, job: TreeJob, opts: RunOptions, groups: List[List[_Loaded]], report: TreeReport
    ):
        self.tree = tree
        self.job = job
        self.opts = opts
        self.groups = groups
        self.report = report
        self.paths = sorted({p for g in groups for lp in g for p in lp.parsed.paths()})
        self.base = tree.head()
        self.scratch = ScratchIndex(tree, self.base if opts.commit else None)
        self.scratch.load_worktree(self.paths)
        self.parent = self.base
        self.commits: List[str] = []

    def log(self, msg: str) -> None:
        if self.opts.log:
            self.opts.log(msg)

    # -- probes
    def probe(self, lp: _Loaded) -> _Probe:
        fwd = self.scratch.apply(lp.file, check=True)
        rev = self.scratch.apply(lp.file, check=True, reverse=True)
        return _Probe(lp, fwd, rev)

    def marker_gone(self, lp: _Loaded) -> bool:
        marker = lp.patch.fixed_marker
        if not marker:
            return False
        seen = False
        for rel in lp.parsed.paths():
            content = self.scratch.content(rel)
            if content is None:
                continue
            seen = True
            if re.search(marker, content.decode("utf-8", "replace"), re.M):
                return False
        return seen

    def _synthesize_postimages(self, lp: _Loaded) -> None:
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
                info = "".join(entries).encode()
                tmp.tree.must("update-index", "--add", "--index-info", env=tmp.env, stdin=info)
            tmp.apply(lp.file)  # writes the post-image blobs; the result itself is not used
        finally:
            tmp.close()

    def can_3way(self, lp: _Loaded, reverse: bool) -> Optional[str]:
        """None when 3-way is possible, else the reason why not."""
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

    def try_3way(self, lp: _Loaded, reverse: bool):
        """Apply by 3-way merge in the scratch index: None when done, else why not."""
        snap = self.scratch.snapshot()
        before = self._entries(lp)
        res = self.scratch.apply(lp.file, threeway=True, reverse=reverse)
        if res.ok and self._no_unmerged():
            if self._entries(lp) != before:
                return None
            self.scratch.restore(snap)
            return "the merge changes nothing (the change is already there)"
        self.scratch.restore(snap)
        tail, path, _ = _describe_failure(lp, self.tree, res.err, reverse)
        return tail

    def applied_by_3way(self, lp: _Loaded) -> bool:
        """Whether a reverse 3-way merge would take the patch out cleanly, i.e. it is in the tree
        (applied earlier by 3-way to a drifted tree). Leaves the scratch index as it was."""
        if self.can_3way(lp, reverse=True) is not None:
            return False
        snap = self.scratch.snapshot()
        before = self._entries(lp)
        try:
            res = self.scratch.apply(lp.file, threeway=True, reverse=True)
            # a merge of a tree without the patch succeeds too, but changes nothing
            return res.ok and self._no_unmerged() and self._entries(lp) != before
        finally:
            self.scratch.restore(snap)

    def _entries(self, lp: _Loaded) -> str:
        return self.scratch.git("ls-files", "-s", "--", *lp.parsed.paths()).out

    def _no_unmerged(self) -> bool:
        res = self.scratch.git("ls-files", "-u")
        return res.ok and not res.out.strip()

    # -- the plan
    def run(self) -> bool:
        groups = list(reversed(self.groups)) if self.opts.reverse else self.groups
        total = len(groups)
        for k, group in enumerate(groups, 1):
            rep = self._reverse_group(group) if self.opts.reverse else self._apply_group(group)
            self.report.patches.append(rep)
            self.log(
                f"[{self.job.target} {k}/{total}] {rep.name}: {rep.state}"
                + (f" ({rep.strategy})" if rep.strategy and rep.strategy != rep.state else "")
                + (f" - {rep.message}" if rep.state == "conflict" else "")
            )
            if rep.state == "conflict":
                for rest in groups[k:]:
                    p = rest[0].patch
                    self.report.patches.append(
                        PatchReport(
                            p.name,
                            p.target,
                            p.file,
                            p.order,
                            None,
                            "not-reached",
                            "an earlier patch does not apply",
                        )
                    )
                return False
        return True

    def _report(self, lp: _Loaded, strategy, state, message="", alts=None) -> PatchReport:
        p = lp.patch
        return PatchReport(
            p.name,
            p.target,
            p.file,
            p.order,
            strategy,
            state,
            message,
            alternatives=[a.patch.name for a in alts] if alts and len(alts) > 1 else [],
        )

    def _done(self, lp: _Loaded, strategy: str, group) -> PatchReport:
        """Record a change made in the scratch index (and its commit in --commit mode)."""
        if self.opts.reverse:
            state = "would-reverse" if self.opts.check else "reversed"
        else:
            state = "would-apply" if self.opts.check else "applied"
        rep = self._report(lp, strategy, state, alts=group)
        if self.opts.commit:
            info = self._commit_info(lp)
            tree_sha = self.scratch.write_tree()
            self.parent = commit_tree(self.tree, tree_sha, self.parent, info)
            self.commits.append(self.parent)
            rep.commit = self.parent
        return rep

    def _commit_info(self, lp: _Loaded) -> MailInfo:
        info = mailinfo(self.tree, lp.data)
        if info is None:
            raise UsageError(
                f"patch {lp.patch.name}: {lp.patch.file} has no From:/Subject: header; "
                "--commit needs git format-patch files"
            )
        if not self.opts.reverse:
            return info
        me = self.tree.git("var", "GIT_AUTHOR_IDENT")
        m = re.match(r"^(.*) <(.*)> \d+ [+-]\d{4}$", me.out.strip()) if me.ok else None
        name, email = (m.group(1), m.group(2)) if m else (info.author, info.email)
        return MailInfo(
            name,
            email,
            "",
            f'Revert "{info.subject}"',
            f"This reverts the patch {lp.patch.file} ({lp.patch.name}).",
        )

    def _fallback(self, extra: List[_Loaded], group: List[_Loaded], reverse: bool) -> Optional[PatchReport]:
        """Try the same-position variants for other versions (plain apply / reverse only)."""
        for lp in extra:
            pr = self.probe(lp)
            if pr.fwd.ok and pr.rev.ok:
                continue
            note = (
                f"fallback: the variant for TensorFlow {lp.patch.versions_text} fits this tree "
                f"(TensorFlow {self.report.version}); the variant for its version does not"
            )
            if not reverse and pr.rev.ok:
                return self._report(lp, "already-applied", "already-applied", note, group)
            if not reverse and pr.fwd.ok and self.scratch.apply(lp.file).ok:
                done = self._done(lp, "clean", group)
                done.message = note
                return done
            if reverse and pr.rev.ok and self.scratch.apply(lp.file, reverse=True).ok:
                done = self._done(lp, "clean", group)
                done.message = note
                return done
            if reverse and pr.fwd.ok:
                return self._report(lp, "not-applied", "not-applied", note + "; nothing to reverse", group)
        return None

    def _probe_group(self, group: List[_Loaded]) -> tuple:
        """(variants, fallbacks, probes of the variants, conflict report if one is ambiguous or None)."""
        group, extra = [lp for lp in group if not lp.fallback], [lp for lp in group if lp.fallback]
        probes = [self.probe(lp) for lp in group]
        return group, extra, probes, self._ambiguous(probes, group)

    def _ambiguous(self, probes: List[_Probe], group: List[_Loaded]) -> Optional[PatchReport]:
        """A conflict report when both a patch and its reverse apply (cannot tell its state), else None."""
        for pr in probes:
            if pr.fwd.ok and pr.rev.ok:
                return self._report(
                    pr.loaded,
                    None,
                    "conflict",
                    f"patch {pr.loaded.patch.name}: both the patch and its reverse apply to "
                    f"{self.tree.path}; cannot tell whether it is applied",
                    group,
                )
        return None

    def _three_way(self, probes: List[_Probe], group: List[_Loaded], reverse: bool) -> tuple:
        """Try each variant by 3-way merge: (report of the first that worked, None) or (None, reasons)."""
        reasons = []
        for pr in probes:
            why = self.can_3way(pr.loaded, reverse=reverse)
            if why is None:
                why = self.try_3way(pr.loaded, reverse=reverse)
                if why is None:
                    return self._done(pr.loaded, "3way", group), None
                why = f"3-way merge: {why}"
            reasons.append((pr, why))
        return None, reasons

    def _apply_group(self, group: List[_Loaded]) -> PatchReport:
        group, extra, probes, ambiguous = self._probe_group(group)
        if ambiguous is not None:
            return ambiguous
        for pr in probes:
            if pr.rev.ok:
                return self._report(pr.loaded, "already-applied", "already-applied", alts=group)
        for pr in probes:
            if pr.fwd.ok:
                res = self.scratch.apply(pr.loaded.file)
                if not res.ok:  # pragma: no cover - --check said yes
                    break
                return self._done(pr.loaded, "clean", group)
        fb = self._fallback(extra, group, reverse=False)
        if fb is not None:
            return fb
        for pr in probes:
            if self.applied_by_3way(pr.loaded):
                return self._report(
                    pr.loaded,
                    "already-applied",
                    "already-applied",
                    "already in the tree (recognised by a reverse 3-way merge)",
                    group,
                )
        fixed = self._fixed_upstream(
            probes,
            group,
            "fixed upstream / already relaxed: the check this patch removes is not in {paths}; nothing to do",
        )
        if fixed is not None:
            return fixed
        done, reasons = self._three_way(probes, group, reverse=False)
        if done is not None:
            return done
        return self._conflict(probes, reasons, group, reverse=False)

    def _reverse_group(self, group: List[_Loaded]) -> PatchReport:
        group, extra, probes, ambiguous = self._probe_group(group)
        if ambiguous is not None:
            return ambiguous
        for pr in probes:
            if pr.rev.ok:
                res = self.scratch.apply(pr.loaded.file, reverse=True)
                if res.ok:
                    return self._done(pr.loaded, "clean", group)
        for pr in probes:
            if pr.fwd.ok:
                return self._report(
                    pr.loaded, "not-applied", "not-applied", "not applied; nothing to reverse", group
                )
        fb = self._fallback(extra, group, reverse=True)
        if fb is not None:
            return fb
        done, reasons = self._three_way(probes, group, reverse=True)
        if done is not None:
            return done
        fixed = self._fixed_upstream(
            probes,
            group,
            "the check this patch removes is absent and the patch is not recognisably "
            "applied (fixed upstream); nothing to reverse",
        )
        if fixed is not None:
            return fixed
        return self._conflict(probes, reasons, group, reverse=True)

    def _fixed_upstream(self, probes, group: List[_Loaded], message: str) -> Optional[PatchReport]:
        """The report for the first probed patch whose check is already gone ({paths} in ``message``)."""
        for pr in probes:
            if self.marker_gone(pr.loaded):
                text = message.format(paths=", ".join(pr.loaded.parsed.paths()))
                return self._report(pr.loaded, "fixed-upstream", "fixed-upstream", text, group)
        return None

    def _conflict(self, probes, reasons, group, reverse: bool) -> PatchReport:
        parts = []
        first_hunk = first_path = None
        for pr, why3 in reasons:
            err = pr.rev.err if reverse else pr.fwd.err
            tail, path, hunk = _describe_failure(pr.loaded, self.tree, err, reverse)
            first_hunk = first_hunk or hunk
            first_path = first_path or path
            parts.append(
                f"patch {pr.loaded.patch.name} ({pr.loaded.patch.file}) does not "
                f"{'reverse' if reverse else 'apply'} to {self.tree.path}: {tail}; {why3}"
            )
        msg = (
            parts[0]
            if len(parts) == 1
            else (f"none of the {len(parts)} variants applies: " + " | ".join(parts))
        )
        rep = self._report(probes[0].loaded, None, "conflict", msg, group)
        rep.hunk, rep.path = first_hunk, first_path
        return rep

    # -- result
    def final_states(self) -> Dict[str, Optional[tuple]]:
        out = {}
        for rel in self.paths:
            e = self.scratch.entry(rel)
            out[rel] = None if e is None else (self.tree.read_blob(e[1]), e[0])
        return out

    def close(self) -> None:
        self.scratch.close()


def _load(
    manifest: Manifest, target: str, groups: List[List[Patch]], tree: Path, workdir: Path
) -> List[List[_Loaded]]:
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
            _validate_paths(p, parsed, tree)
            copy = workdir / f"{p.index:04d}.patch"
            copy.write_bytes(data)
            loaded.append(_Loaded(p, data, parsed, copy, fallback=p in extra))
        out.append(loaded)
    return out


def _foreign_changes(tree: Tree, groups: List[List[_Loaded]], dirty: List[str]) -> List[str]:
    """The dirty entries that are not just our own patches: a touched file whose content equals
    HEAD's with the patches applied (cleanly or by 3-way) is ours, e.g. from an earlier run."""
    paths = sorted({p for g in groups for lp in g for p in lp.parsed.paths()})
    scratch = ScratchIndex(tree, None)
    try:
        info = tree.head_index_info(paths)
        if info:
            tree.must("update-index", "--add", "--index-info", env=scratch.env, stdin=info.encode())
        for group in groups:
            for lp in group:
                if scratch.apply(lp.file).ok:
                    break
                if not tree.plain:
                    snap = scratch.snapshot()
                    if scratch.apply(lp.file, threeway=True).ok:
                        break
                    scratch.restore(snap)
        foreign = []
        for entry in dirty:
            rel = entry[3:]
            if " -> " in rel:
                foreign.append(entry)
                continue
            got = tree.read_worktree(rel)
            want = scratch.entry(rel)
            if got is None and want is None:
                continue
            if got is None or want is None or want[0] != got[1]:
                foreign.append(entry)
                continue
            sha = tree.must("hash-object", "--stdin", stdin=got[0]).out.strip()
            if sha != want[1]:
                foreign.append(entry)
        return foreign
    finally:
        scratch.close()


def _require_models_tree(tree: Tree, groups: List[List[_Loaded]]) -> None:
    """Bad input (exit 2), not a conflict: a --models-dir where no file any models patch touches exists."""
    paths = sorted({p for g in groups for lp in g for p in lp.parsed.paths()})
    if paths and not any((tree.path / rel).is_file() for rel in paths):
        raise UsageError(
            f"--models-dir {tree.path}: none of the files the patches touch exists ({paths[0]}, ...); "
            "is this the top of a tensorflow/models tree?"
        )


def _stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_jobs(manifest: Manifest, jobs: Sequence[TreeJob], opts: RunOptions) -> RunReport:
    """Plan every job, then (unless check) write them all. Returns the report; raises ToolError on
    bad input. A conflict does not raise: the report's ``ok`` is False and nothing was changed."""
    report = RunReport(mode=opts.mode, commit=opts.commit, manifest=str(manifest.path))
    trees: List[Tree] = []
    planners: List[_Planner] = []
    workdir = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-patches-"))
    try:
        # Phase 1: validate every tree (version, patch files, dirty state) before any planning or
        # progress output, so bad input in the second tree is one error line and no work is done.
        prepared = []
        for job in jobs:
            tree = Tree.open(job.path, label=f"--{'tf' if job.target == 'tensorflow' else 'models'}-dir")
            trees.append(tree)
            version = None
            if job.target == "tensorflow":
                version = read_tree_version(tree.path)
                if job.request is not None:
                    check_request(job.request, version, tree.path)
            groups = select_for_tree(manifest, job.target, version, tree.path)
            loaded = _load(manifest, job.target, groups, tree.path, workdir)
            if job.target == "models":
                _require_models_tree(tree, loaded)
            treport = TreeReport(
                job.target,
                str(tree.path),
                git=not tree.plain,
                version=version.text if version else None,
                requested=job.request.text if job.request else None,
            )
            report.trees.append(treport)
            if opts.commit and tree.plain:
                if tree.outer is not None:
                    raise UsageError(
                        f"{tree.path} is inside the git repository {tree.outer[0].working_tree_dir} but not "
                        "at its top; --commit needs the tree to be a repository of its own"
                    )
                raise UsageError(f"{tree.path} is not a git repository; --commit needs one")
            paths = sorted({p for g in loaded for lp in g for p in lp.parsed.paths()})
            dirty = tree.dirty(paths)
            if dirty and not opts.allow_dirty and not opts.commit:
                dirty = _foreign_changes(tree, loaded, dirty)
            if dirty and (opts.commit or not opts.allow_dirty):
                files = ", ".join(d[3:] for d in dirty)
                hint = (
                    "--commit needs them clean"
                    if opts.commit
                    else "commit or stash them, or pass --allow-dirty"
                )
                raise UsageError(
                    f"{tree.path} has local changes in files the patches touch ({files}); {hint}"
                )
            prepared.append((tree, job, version, loaded, treport))
        # Phase 2: plan every tree in scratch indexes (nothing is written yet).
        for tree, job, version, loaded, treport in prepared:
            if opts.log:
                what = f"TensorFlow {version.text}" if version else job.target
                opts.log(
                    f"{tree.path}: {what}, {len(loaded)} patch(es) selected"
                    + (
                        ""
                        if not tree.plain
                        else " (plain directory, no git history)"
                        if tree.outer is None
                        else f" (inside {tree.outer[0].working_tree_dir}: patched as a plain directory)"
                    )
                )
            planner = _Planner(tree, job, opts, loaded, treport)
            planners.append(planner)
            treport.head_before = treport.head_after = planner.base
            if not planner.run():
                return report
        if opts.check:
            return report
        _write_all(planners)
        return report
    finally:
        for pl in planners:
            pl.close()
        for t in trees:
            t.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _write_all(planners: List[_Planner]) -> None:
    writers: List[WorktreeWriter] = []
    moved: List[tuple] = []
    try:
        for pl in planners:
            w = WorktreeWriter(pl.tree)
            writers.append(w)
            for rel, new in pl.final_states().items():
                if w.write(rel, new):
                    pl.report.changed_files.append(rel)
            if pl.opts.commit and pl.commits:
                move_head(pl.tree, pl.parent, pl.base, f"apply_patches: {len(pl.commits)} patch(es)")
                moved.append((pl, pl.parent))
                pl.report.head_after = pl.parent
                reset_paths(pl.tree, pl.paths)
    except BaseException as exc:
        problems = []
        for pl, new in reversed(moved):
            try:
                move_head(pl.tree, pl.base, new, "apply_patches: rollback")
                reset_paths(pl.tree, pl.paths)
            except ToolError:
                problems.append(f"{pl.tree.path}: HEAD")
        for w in reversed(writers):
            problems.extend(f"{w.tree.path}/{rel}" for rel in w.rollback())
        for pl in planners:
            pl.report.changed_files.clear()
            pl.report.head_after = pl.base
        if problems:
            raise CheckFailed(
                f"writing the patched files failed ({exc}); could NOT restore: {', '.join(problems)}"
            ) from None
        if isinstance(exc, OSError):
            raise CheckFailed(f"writing the patched files failed ({exc}); every file was restored") from None
        raise


# convenience for callers that want exceptions
def apply(manifest: Manifest, jobs: Sequence[TreeJob], opts: RunOptions) -> RunReport:
    report = run_jobs(manifest, jobs, opts)
    if not report.ok:
        raise ConflictError(report.first_error() or "a patch does not apply", report)
    return report
