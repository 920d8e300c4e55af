"""The files a run reads and writes in a tree, and what it does with symbolic links, hard links and
permissions (the same for --check, --reverse and --commit, and for TensorFlow and tensorflow/models trees).

**Symbolic links.** A path the patches (or the models rule) touch is followed link by link, every
component of it (a linked directory as well as a linked file, chains included):

* a link whose final target is a regular file **inside the tree** is patched *through*: the target's text
  is what is read, checked and changed, the target file is written (atomically, like every write), and
  the link stays as it was. The report names both paths (``links`` in ``--json``). With ``--commit`` the
  commit changes the target's path; the link's entry is kept.
* a link whose target is **outside the tree** is refused (exit 2, one line naming the link and its
  target), unless ``--follow-symlinks`` is given; then the outside file is patched through in the same way
  (``--commit`` still refuses: a file outside the repository cannot be committed in it).
* a **dangling** link, a **loop**, a link to a **directory** or to anything but a regular file: refused
  (exit 2, one line naming the link and where it leads). Never a status such as ``fixed-upstream``.

``git apply`` never follows a link: it patches a link's own text (so the patch does not apply) and refuses
a path beyond a linked directory, so that a patch cannot write outside the repository. We keep that
protection (outside the tree only with ``--follow-symlinks``) but follow links inside the tree, because
vendor and platform trees link files within themselves (AOSP ``external/`` projects, monorepo layouts,
generated trees) and the file the build compiles is the target, not the link's text.

**Hard links.** A file with other hard links is replaced (a new file under its name, as git and editors
that write atomically do): the other names keep the old text. Two touched paths that are one file (by
link or hard link) are refused.

**Permissions.** A file or folder the run cannot read is an error naming it (exit 2); so is, before
anything is written (and with ``--check``), a file that would change but whose file or folder is not
writable. A read-only file is refused rather than replaced.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import List, Optional, Tuple

from deeplab_nnapi.errors import UsageError

#: Links followed before a path counts as a loop (Linux's own limit is 40).
MAX_HOPS = 40


@dataclass(frozen=True)
class Resolved:
    """Where a touched path really is."""

    rel: str  # the path the patch names, relative to the tree
    real: Path  # the regular file read and written (absolute, no link in it)
    real_rel: Optional[str]  # its path relative to the tree; None when it is outside the tree
    links: Tuple[Tuple[str, str], ...] = field(default=())  # (link, its target text), in the order followed
    nlink: int = 1  # hard links of the real file
    ident: Tuple[int, int] = (0, 0)  # (st_dev, st_ino)

    @property
    def linked(self) -> bool:
        return bool(self.links)

    @property
    def inside(self) -> bool:
        return self.real_rel is not None

    @property
    def shown_real(self) -> str:
        return self.real_rel if self.real_rel is not None else str(self.real)

    def chain(self) -> str:
        """``link -> target[; link2 -> target2] (= the file)`` for messages."""
        if not self.links:
            return self.rel
        text = "; ".join(f"{a} -> {b}" for a, b in self.links)
        return text + (f" (= {self.shown_real})" if self.links[-1][1] != self.shown_real else "")

    def to_json(self) -> dict:
        return {
            "path": self.rel,
            "links": [{"link": a, "target": b} for a, b in self.links],
            "file": self.shown_real,
            "inside": self.inside,
            "hard_links": self.nlink,
        }


def _shown(root: Path, p: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _blocked(root: Path, p: Path, exc: OSError) -> str:
    """What stops ``p`` from being looked at: the first folder on the way that cannot be searched."""
    if exc.errno == errno.EACCES:
        for folder in reversed([p.parent, *p.parent.parents]):
            if folder != root and root not in folder.parents:
                continue
            if not _can(folder, os.X_OK):
                where = _shown(root, folder)
                return f"{_shown(root, p)} ({_why(exc)}: the folder {where} cannot be searched)"
    return f"{_shown(root, p)} ({_why(exc)})"


def _inside(root: Path, p: Path) -> bool:
    return p == root or root in p.parents


def resolve(root: Path, rel: str, follow_outside: bool = False) -> Optional[Resolved]:
    """Where ``rel`` (a path inside ``root``, which is absolute and has no link in it) really is.

    None when there is nothing at ``rel`` and no link was involved (a missing file). Raises UsageError
    (one line naming the path, and the link and its target) for a dangling link, a loop, a link that
    leaves the tree without ``follow_outside``, a directory or special file, or a folder on the way that
    cannot be read."""
    pending: List[str] = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
    cur = root
    links: List[Tuple[str, str]] = []
    hops = 0
    st = None
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            cur = cur.parent
            continue
        nxt = cur / part
        try:
            st = os.lstat(nxt)
        except (FileNotFoundError, NotADirectoryError):
            if not links:
                return None
            chain = "; ".join(f"{a} -> {b}" for a, b in links)
            raise UsageError(
                f"{rel}: the symlink {chain} leads to {_shown(root, nxt.joinpath(*pending))}, which does not "
                "exist (a dangling link); refused"
            ) from None
        except OSError as exc:
            raise UsageError(f"{rel}: cannot read {_blocked(root, nxt, exc)}; refused") from None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            try:
                target = os.readlink(nxt)
            except OSError as exc:  # pragma: no cover - a link that vanished in between
                shown = _shown(root, nxt)
                raise UsageError(f"{rel}: cannot read the symlink {shown} ({_why(exc)})") from None
            links.append((_shown(root, nxt), target))
            if hops > MAX_HOPS:
                raise UsageError(
                    f"{rel}: the symlink {links[0][0]} -> {links[0][1]} loops (more than {MAX_HOPS} links "
                    "followed); refused"
                )
            tparts = [p for p in PurePosixPath(target).parts if p not in ("", ".")]
            if target.startswith("/"):
                cur = Path("/")
                tparts = tparts[1:] if tparts and tparts[0] == "/" else tparts
            pending = tparts + pending
            continue
        cur = nxt
    assert st is not None
    real = cur
    real_rel = real.relative_to(root).as_posix() if _inside(root, real) else None
    res = Resolved(rel, real, real_rel, tuple(links), st.st_nlink, (st.st_dev, st.st_ino))
    if real_rel is None and not follow_outside:
        raise UsageError(
            f"{rel}: the symlink {res.chain()} leads outside the tree; refused "
            "(--follow-symlinks patches the file it points at)"
        )
    if stat.S_ISDIR(st.st_mode):
        via = f" (through the symlink {res.chain()})" if links else ""
        raise UsageError(f"{rel}: is a directory{via}, not a file; refused")
    if not stat.S_ISREG(st.st_mode):
        via = f" (through the symlink {res.chain()})" if links else ""
        raise UsageError(f"{rel}: is not a regular file{via}; refused")
    return res


def read_file(res: Resolved) -> Tuple[bytes, str]:
    """(bytes, git mode) of a resolved file; UsageError naming it when it cannot be read."""
    try:
        with open(res.real, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except OSError as exc:
        where = f" (through the symlink {res.chain()})" if res.linked else ""
        raise UsageError(f"{res.rel}{where}: cannot read ({_why(exc)}); refused") from None
    if not stat.S_ISREG(st.st_mode):  # replaced by something else since it was resolved
        raise UsageError(f"{res.rel}: is no longer a regular file; refused")
    mode = "100755" if st.st_mode & stat.S_IXUSR else "100644"
    return data, mode


def _can(path: Path, how: int) -> bool:
    try:
        return os.access(path, how, effective_ids=os.access in os.supports_effective_ids)
    except OSError:  # pragma: no cover
        return False


def writable_problem(res: Optional[Resolved], root: Path, rel: str) -> Optional[str]:
    """Why the file at ``rel`` (resolved ``res``; None = to be created) cannot be replaced, or None."""
    target = res.real if res is not None else root / rel
    folder = target.parent
    shown = rel if res is None or not res.linked else f"{rel} (through the symlink {res.chain()})"
    if res is not None and not _can(target, os.W_OK):
        return f"{shown}: the file is not writable (read-only); refused, nothing was changed"
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not _can(probe, os.W_OK | os.X_OK):
        return (
            f"{shown}: the folder {_shown(root, probe)} is not writable (the file is replaced "
            "atomically there); refused, nothing was changed"
        )
    return None


def entry_exists(path: Path, what: str) -> bool:
    """Whether anything (a file, a folder, a link, even a dangling one) is at ``path``. UsageError when a
    folder on the way cannot be read (so that the error names it instead of a missing file)."""
    try:
        os.lstat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # pragma: no cover - a loop in a folder on the way
            raise UsageError(f"{path}: a symlink on the way loops ({what})") from None
        raise UsageError(f"{path}: cannot read ({_why(exc)}; {what})") from None
