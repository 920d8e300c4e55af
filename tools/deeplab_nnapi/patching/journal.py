"""Writing a run's result into the trees so that no crash can leave a half-patched tree behind.

Before the first byte of any tree changes, every tree of the run gets a *journal*: the before and after
bytes of each file the run changes, and (``--commit``) where the branch is and where it goes. The journal's
``state.json`` is written last, atomically: from then on the run is *committed*. Then the files are written
(each atomically), the branch is moved and the index reset, and at the very end the journals are
removed.

A run that dies anywhere in between (SIGKILL, power cut) leaves a journal. The next run on that tree
recognises it before doing anything else and repairs it, and says which it did:

* a run in the same direction (apply after an interrupted apply) **finishes** it: the files still at their
  before state get their after bytes, the branch is moved, the journal removed;
* a run in the other direction (``--reverse`` after an interrupted apply) **rolls it back**: the files
  already written get their before bytes back, the branch goes back;
* ``--check`` repairs nothing and reports the interrupted run (exit 1).

A journal without ``state.json`` belongs to a run that died before it wrote anything to the tree; it is
simply removed. A file that is neither at its before nor at its after state (someone edited it since) or a
branch that moved elsewhere stops the repair with a one-line error naming the journal, which keeps both
copies.

Where: ``<git dir>/deeplab-nnapi-journal/`` in a git tree (never in the work tree), else
``<tree>/.deeplab-nnapi-journal/``.

Testing hook: with ``DEEPLAB_NNAPI_TEST_KILL_AFTER_WRITES=k`` the process kills itself (``os._exit(137)``,
what SIGKILL looks like to the next run) right after its k-th write to a tree or journal.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from deeplab_nnapi.errors import CheckFailed, ToolError, UsageError
from deeplab_nnapi.fileio import atomic_write, sha256_bytes
from deeplab_nnapi.patching.gitops import Tree, move_head, reset_paths

KILL_VAR = "DEEPLAB_NNAPI_TEST_KILL_AFTER_WRITES"
SCHEMA = 1
STATE = "state.json"

FileState = Optional[Tuple[bytes, str]]  # (bytes, git mode) or None = absent

_writes = 0


def _wrote(what: str) -> None:
    """Count a write; the testing hook dies after the k-th."""
    global _writes
    _writes += 1
    limit = os.environ.get(KILL_VAR, "").strip()
    if limit.isdigit() and _writes >= int(limit):
        os._exit(137)


def journal_dir(tree: Tree) -> Path:
    if not tree.plain:
        return Path(tree.repo.git_dir) / "deeplab-nnapi-journal"
    return tree.path / ".deeplab-nnapi-journal"


# -- writing one file of a tree ---------------------------------------------------------------------
def _target(tree: Tree, rel: str) -> Path:
    """The file written for the touched path ``rel``: through a symlink the policy allows, its target."""
    res = tree.resolve(rel)
    return res.real if res is not None else tree.path / rel


def _write_file(tree: Tree, rel: str, new: FileState) -> None:
    path = _target(tree, rel)
    old_bits = None
    try:
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode):
            old_bits = stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        pass
    if new is None:
        if path.exists() or path.is_symlink():
            path.unlink()
        return
    data, mode = new
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "120000":
        tmp = path.with_name(f".{path.name}.deeplab-nnapi-tmp")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        os.symlink(data.decode(), tmp)
        os.replace(tmp, path)
        return
    bits = 0o755 if mode == "100755" else 0o644
    if old_bits is not None and bool(old_bits & 0o111) == (mode == "100755"):
        bits = old_bits  # keep the user's exact permission bits
    atomic_write(path, data, mode=bits, fsync=True)


def _remove_temp_files(tree: Tree, rels: List[str]) -> None:
    """Temporary files an interrupted atomic write left beside the files (".<name>.*.tmp")."""
    for rel in rels:
        p = _target(tree, rel)
        if p.parent.is_dir():
            for tmp in p.parent.glob(f".{p.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
            tmp = p.with_name(f".{p.name}.deeplab-nnapi-tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()


def _state_of(tree: Tree, rel: str) -> FileState:
    return tree.read_worktree(rel)


def _same(a: FileState, b: FileState) -> bool:
    return a == b


# -- the journal --------------------------------------------------------------------------------------
@dataclass
class TreeChange:
    """What a run does to one tree."""

    tree: Tree
    mode: str  # "apply" | "reverse"
    files: List[Tuple[str, FileState, FileState]] = field(default_factory=list)  # (rel, before, after)
    head: Optional[Tuple[Optional[str], str]] = None  # (branch before, branch after) with --commit
    reset: List[str] = field(default_factory=list)  # index entries to reset to HEAD after moving it


def _enc(fs: FileState, d: Path, name: str) -> Optional[dict]:
    if fs is None:
        return None
    (d / name).write_bytes(fs[0])
    _wrote(f"journal {name}")
    return {"file": name, "sha256": sha256_bytes(fs[0]), "mode": fs[1]}


def _dec(entry: Optional[dict], d: Path) -> FileState:
    if entry is None:
        return None
    data = (d / entry["file"]).read_bytes()
    if sha256_bytes(data) != entry["sha256"]:
        raise UsageError(f"journal {d}: {entry['file']} is damaged (sha256 differs); repair by hand")
    return data, entry["mode"]


def write_journal(change: TreeChange) -> Path:
    d = journal_dir(change.tree)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    files = []
    for i, (rel, before, after) in enumerate(change.files):
        files.append(
            {"path": rel, "before": _enc(before, d, f"{i}.before"), "after": _enc(after, d, f"{i}.after")}
        )
    state = {
        "schema": SCHEMA,
        "tool": "deeplab-nnapi apply_patches",
        "mode": change.mode,
        "started": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "tree": str(change.tree.path),
        "files": files,
        "head": list(change.head) if change.head else None,
        "reset": change.reset,
    }
    atomic_write(d / STATE, json.dumps(state, indent=1).encode(), fsync=True)
    _wrote("journal state")
    return d


def _do(change: TreeChange, forward: bool, strict: bool = True) -> List[str]:
    """Bring the tree to the after (forward) or before state; idempotent. A file that is at neither state
    (someone changed it while the run was going) is never overwritten: ``strict`` raises UsageError naming
    it, otherwise it is left as it is and named in the returned list."""
    left = []
    for rel, before, after in change.files:
        want, other = (after, before) if forward else (before, after)
        try:
            change.tree.resolve(rel, fresh=True)  # a file replaced by a link meanwhile: not ours to write
        except UsageError:
            if strict:
                raise
            left.append(str(change.tree.path / rel))
            continue
        now = _state_of(change.tree, rel)
        if _same(now, want):
            continue
        if not _same(now, other):
            shown = _target(change.tree, rel)
            if strict:
                raise UsageError(f"{shown} changed during the run (it is neither as read nor as written); "
                                 "it was left as it is")
            left.append(str(shown))
            continue
        _write_file(change.tree, rel, want)
        _wrote(rel)
    if change.head:
        old, new = change.head
        target, other = (new, old) if forward else (old, new)
        if change.tree.head() != target:
            move_head(change.tree, target, other, "apply_patches: " + ("finish" if forward else "rollback"))
            _wrote("HEAD")
        reset_paths(change.tree, change.reset)
        _wrote("index")
    return left


def remove_journal(tree: Tree) -> None:
    d = journal_dir(tree)
    if d.exists():
        shutil.rmtree(d)
        _wrote("journal removed")


def commit_changes(changes: List[TreeChange]) -> None:
    """Write every tree's change through its journal (see the module doc). On an error in this process
    every tree is put back as it was, and the error is raised (CheckFailed for an OSError)."""
    written: List[TreeChange] = []
    try:
        for ch in changes:
            write_journal(ch)
            written.append(ch)
        for ch in changes:
            _do(ch, forward=True)
    except BaseException as exc:
        problems = []
        for ch in reversed(written):
            try:
                _do(ch, forward=False, strict=False)  # a file someone else changed meanwhile stays theirs
                remove_journal(ch.tree)
            except (OSError, ToolError) as err:
                problems.append(f"{ch.tree.path} ({err}; journal kept in {journal_dir(ch.tree)})")
        if problems:
            raise CheckFailed(
                f"writing the patched files failed ({exc}); could NOT restore: " + ", ".join(problems)
            ) from None
        if isinstance(exc, OSError):
            raise CheckFailed(f"writing the patched files failed ({exc}); every file was restored") from None
        if isinstance(exc, UsageError):
            raise UsageError(f"{exc}; what this run had written was put back, nothing was changed") from None
        raise
    for ch in changes:
        remove_journal(ch.tree)


# -- repairing an interrupted run ---------------------------------------------------------------------
@dataclass
class Interrupted:
    change: TreeChange
    started: str
    written: int  # files already at their after state
    total: int
    head_moved: bool

    def describe(self) -> str:
        head = (
            ""
            if self.change.head is None
            else (", branch moved" if self.head_moved else ", branch not moved")
        )
        return (
            f"an interrupted {self.change.mode} run (started {self.started}) had written "
            f"{self.written} of {self.total} file(s){head}"
        )


def read_interrupted(tree: Tree) -> Optional[Interrupted]:
    """The interrupted run recorded for ``tree`` (None if there is none or it never began writing)."""
    d = journal_dir(tree)
    if not (d / STATE).is_file():
        return None
    try:
        state = json.loads((d / STATE).read_text(encoding="utf-8"))
        files = [(f["path"], _dec(f["before"], d), _dec(f["after"], d)) for f in state["files"]]
        head = tuple(state["head"]) if state.get("head") else None
        change = TreeChange(tree, state["mode"], files, head, list(state.get("reset", [])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{d}: unreadable journal of an interrupted run ({exc}); repair by hand") from None
    _remove_temp_files(tree, [rel for rel, _, _ in files])
    written = 0
    for rel, before, after in files:
        now = _state_of(tree, rel)
        if _same(now, after) and not _same(before, after):
            written += 1
        elif not _same(now, before):
            raise UsageError(
                f"{tree.path}/{rel} changed since an interrupted {change.mode} run; its before and after "
                f"copies are in {d} (resolve by hand, then remove that directory)"
            )
    moved = False
    if head:
        now = tree.head()
        if now == head[1]:
            moved = True
        elif now != head[0]:
            raise UsageError(
                f"{tree.path}: HEAD moved since an interrupted --commit run (journal {d}); resolve by hand"
            )
    return Interrupted(change, state.get("started", "?"), written, len(files), moved)


def discard_unstarted(tree: Tree) -> bool:
    """Remove a journal whose run died before writing anything (no state.json)."""
    d = journal_dir(tree)
    if d.exists() and not (d / STATE).is_file():
        shutil.rmtree(d)
        return True
    return False


def repair(tree: Tree, mode: str, check: bool, log: Callable[[str], None]) -> Optional[str]:
    """Recognise and repair an interrupted run on ``tree`` before a new run in ``mode``
    ("apply"/"reverse"). Returns what was done (for the report), None when there was nothing."""
    d = journal_dir(tree)
    if d.exists() and not (d / STATE).is_file():
        if check:
            return ("an interrupted run had not begun to write (the tree is untouched); "
                    "the next run removes its journal")
        discard_unstarted(tree)
        note = "an interrupted run had not begun to write: its journal was removed, the tree was untouched"
        log(f"{tree.path}: {note}")
        return note
    found = read_interrupted(tree)
    if found is None:
        return None
    if check:
        raise CheckFailed(
            f"{tree.path}: {found.describe()}; run apply_patches without --check to "
            f"{'finish' if found.change.mode == mode else 'roll back'} it"
        )
    forward = found.change.mode == mode
    _do(found.change, forward=forward)
    remove_journal(tree)
    note = f"{found.describe()}: {'finished it' if forward else 'rolled it back'}"
    log(f"{tree.path}: {note}")
    return note
