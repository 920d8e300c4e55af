"""Git plumbing for the patch engine, on GitPython.

The engine never lets ``git apply`` loose on a working tree. It works in a *scratch index*
(``GIT_INDEX_FILE`` in a temporary directory) that holds the current bytes of the files the patches
touch; ``git apply --cached`` (plain, ``-R`` or ``--3way``) runs there. Only when every patch of every
tree went through does the engine write the resulting files into the working tree (atomically,
with a rollback copy). The user's real index and HEAD are left alone, except in ``--commit`` mode,
which creates one commit per patch with ``git commit-tree`` and moves the branch once at the end.

Plain directories (no ``.git``) are supported: a temporary bare repository provides the object
store; 3-way merges (which need history) and ``--commit`` are then not available.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import git

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.patching import treefiles
from deeplab_nnapi.patching.treefiles import Resolved


@dataclass
class GitResult:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def git_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {"LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0"}
    if extra:
        env.update(extra)
    return env


def execute(
    repo,
    args: Sequence[str],
    env: Optional[Dict[str, str]] = None,
    stdin: Optional[bytes] = None,
    binary: bool = False,
) -> GitResult:
    """Run ``git ARGS`` in ``repo`` (a ``git.Repo``, or a ``git.Git`` command object) through GitPython,
    with :func:`git_env` plus ``env``; never raises on a non-zero exit."""
    istream = None
    if stdin is not None:
        istream = tempfile.TemporaryFile()
        istream.write(stdin)
        istream.seek(0)
    try:
        runner = repo.git if isinstance(repo, git.Repo) else repo
        rc, out, err = runner.execute(
            ["git", *args],
            env=git_env(env),
            istream=istream,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=not binary,
            strip_newline_in_stdout=False,
        )
    finally:
        if istream is not None:
            istream.close()
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    return GitResult(rc, out, err)


class Tree:
    """A source tree the engine patches: a git work tree, or a plain directory with a scratch repo."""

    def __init__(
        self,
        path: Path,
        repo: git.Repo,
        plain: bool,
        scratch: Optional[Path] = None,
        outer: Optional[Tuple[git.Repo, str]] = None,
    ):
        self.path = path
        self.repo = repo
        self.plain = plain
        self._scratch = scratch
        #: for a plain tree inside another repository: (that repository, this tree's path in it)
        self.outer = outer
        #: --follow-symlinks: a touched path whose link leaves the tree is patched through (see treefiles)
        self.follow_symlinks = False
        self._resolved: Dict[str, Optional[Resolved]] = {}
        self._blobs: Dict[str, bytes] = {}

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, label: str = "tree") -> Tree:
        path = Path(path).expanduser()
        if not path.exists():
            raise UsageError(f"{label} {path} does not exist")
        if not path.is_dir():
            raise UsageError(f"{label} {path} is not a directory")
        path = path.resolve()
        try:
            repo = git.Repo(path, search_parent_directories=True)
        except git.InvalidGitRepositoryError:
            repo = None
        except git.NoSuchPathError:  # pragma: no cover - checked above
            raise UsageError(f"{label} {path} does not exist") from None
        if repo is not None:
            if repo.bare or repo.working_tree_dir is None:
                raise UsageError(f"{label} {path} is a bare git repository; give a checkout")
            top = Path(repo.working_tree_dir).resolve()
            if top == path:
                return cls(path, repo, plain=False)
        # A plain directory, or one inside someone else's repository (a vendored third_party/ copy, a
        # tarball unpacked in a git home dir): patched as a plain directory rather than relative to the
        # wrong root, but the enclosing repository still tells which touched files have local edits.
        outer = (repo, path.relative_to(top).as_posix()) if repo is not None else None
        scratch = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-git-"))
        # an empty template: no sample hooks to copy (and delete again)
        repo = git.Repo.init(scratch, bare=True, template="", allow_unsafe_options=True)
        return cls(path, repo, plain=True, scratch=scratch, outer=outer)

    def close(self) -> None:
        self.repo.close()
        if self.outer is not None:
            self.outer[0].close()
            self.outer = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running git ------------------------------------------------------------------------------
    def git(
        self,
        *args: str,
        env: Optional[Dict[str, str]] = None,
        stdin: Optional[bytes] = None,
        binary: bool = False,
    ) -> GitResult:
        """Run ``git ARGS`` in this tree (through GitPython); never raises on a non-zero exit."""
        return execute(self.repo, args, env=env, stdin=stdin, binary=binary)

    def must(self, *args: str, **kw) -> GitResult:
        res = self.git(*args, **kw)
        if not res.ok:
            msg = (res.err.strip().splitlines() or ["(no message)"])[-1]
            raise CheckFailed(f"{self.path}: git {args[0]} failed: {msg}")
        return res

    # -- queries ----------------------------------------------------------------------------------
    def head(self) -> Optional[str]:
        if self.plain:
            return None
        res = self.git("rev-parse", "--verify", "-q", "HEAD^{commit}")
        return res.out.strip() if res.ok else None

    def dirty(self, paths: Iterable[str]) -> List[str]:
        """Touched paths with local changes (staged, unstaged or untracked): 'XY path' lines, the paths
        relative to this tree. A plain directory has none, unless it lies inside another repository.
        A touched path reached through a symlink inside the tree is asked about under its target's path
        (reported under the touched path); a changed symlink itself is reported as ``XY path (symlink)``;
        a file outside the tree has no status here."""
        paths = sorted(set(paths))
        if not paths or (self.plain and self.outer is None):
            return []
        back: Dict[str, str] = {}
        ask: List[str] = []
        for p in paths:
            gp = self.git_path(p)
            if gp is not None:
                back.setdefault(gp, p)
                ask.append(gp)
            if gp != p:
                ask.append(p)
        status = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--"]
        if not self.plain:
            entries = [e for e in self.must(*status, *sorted(set(ask))).out.split("\0") if len(e) > 3]
        else:
            outer, prefix = self.outer
            out = self._outer_git(*status, *(f"{prefix}/{p}" for p in sorted(set(ask))))
            entries = [
                e[:3] + e[3 + len(prefix) + 1 :] if e[3:].startswith(prefix + "/") else e
                for e in out.split("\0")
                if len(e) > 3
            ]
        out_entries = []
        for e in entries:
            name = e[3:]
            if name in back:
                out_entries.append(e[:3] + back[name])
            elif name in paths:
                out_entries.append(e + " (symlink)")
            else:
                out_entries.append(e)
        return out_entries

    def _outer_git(self, *args: str, binary: bool = False):
        """Output of ``git ARGS`` in the enclosing repository; raises CheckFailed on a non-zero exit."""
        outer, _ = self.outer
        res = execute(outer, args, binary=binary)
        if not res.ok:
            msg = (res.err.strip().splitlines() or ["(no message)"])[-1]
            raise CheckFailed(f"{outer.working_tree_dir}: git {args[0]} failed: {msg}")
        return res.out

    def head_index_info(self, paths: Sequence[str]) -> str:
        """``git update-index --index-info`` lines for ``paths`` as they are in HEAD (of the enclosing
        repository for a plain tree inside one; their blobs are copied into this tree's object store).
        A path reached through a symlink inside the tree gets its target's entry."""
        back: Dict[str, str] = {}
        for p in paths:
            gp = self.git_path(p)
            if gp is not None:
                back.setdefault(gp, p)
        asked = sorted(back)
        if not asked:
            return ""
        head = self.head()
        if head:
            listing = self.must("ls-tree", "-z", "--full-tree", head, "--", *asked).out
            strip = ""
        elif self.outer is not None:
            prefix = self.outer[1]
            if not execute(self.outer[0], ("rev-parse", "--verify", "-q", "HEAD^{commit}")).ok:
                return ""  # no commit yet: every touched file counts as a local change
            listing = self._outer_git(
                "ls-tree", "-z", "--full-tree", "HEAD", "--", *(f"{prefix}/{p}" for p in asked)
            )
            strip = prefix + "/"
        else:
            return ""
        info = []
        for rec in listing.split("\0"):
            if not rec:
                continue
            meta, _, name = rec.partition("\t")
            mode, kind, sha = meta.split()
            if kind != "blob":
                continue
            if strip:
                name = name[len(strip) :]
                data = self._outer_git("cat-file", "blob", sha, binary=True)
                sha = self.must("hash-object", "-w", "--stdin", stdin=data).out.strip()
            info.append(f"{mode} {sha}\t{back.get(name, name)}\n")
        return "".join(info)

    def has_object(self, abbrev: str, kind: str = "blob") -> bool:
        if set(abbrev) == {"0"}:
            return True  # the null id of a created/deleted file
        return self.git("cat-file", "-e", f"{abbrev}^{{{kind}}}").ok

    # -- the touched files (symlinks, permissions: see treefiles) ---------------------------------------
    def resolve(self, rel: str, fresh: bool = False) -> Optional[Resolved]:
        """Where the touched path ``rel`` really is (None: nothing there). Raises UsageError for what
        the link policy refuses. Cached: ``fresh`` resolves again (and says when the answer changed)."""
        if rel in self._resolved and not fresh:
            return self._resolved[rel]
        got = treefiles.resolve(self.path, rel, self.follow_symlinks)
        if rel in self._resolved and _where(self._resolved[rel]) != _where(got):
            now = "nowhere" if got is None else got.shown_real
            raise UsageError(f"{self.path / rel} changed during the run (it now leads to {now})")
        self._resolved[rel] = got
        return got

    def resolved(self) -> List[Resolved]:
        """Every touched path resolved so far that is not the plain file its name says."""
        return [r for r in self._resolved.values() if r is not None and (r.linked or r.nlink > 1)]

    def git_path(self, rel: str) -> Optional[str]:
        """The path git knows the touched file by: the link's target inside the tree, the path itself,
        or None for a file outside the tree."""
        res = self._resolved.get(rel)
        if res is None:
            return rel
        return res.real_rel

    def read_worktree(self, rel: str) -> Optional[Tuple[bytes, str]]:
        """(bytes, git mode) of a touched file, read through the links the policy allows; None when
        missing. UsageError naming the file when it cannot be read."""
        res = self.resolve(rel)
        if res is None:
            return None
        return treefiles.read_file(res)

    def hash_blob(self, data: bytes) -> str:
        return self.must("hash-object", "-w", "--stdin", stdin=data).out.strip()

    def read_blob(self, sha: str) -> bytes:
        if sha not in self._blobs:  # a blob never changes: read it once
            self._blobs[sha] = self.must("cat-file", "blob", sha, binary=True).out
        return self._blobs[sha]

    def committer_known(self) -> bool:
        return self.git("var", "GIT_COMMITTER_IDENT").ok


def _where(res: Optional[Resolved]):
    return None if res is None else res.real  # (a new inode is fine: the bytes are compared too)


class ScratchIndex:
    """A temporary index (GIT_INDEX_FILE) seeded from HEAD plus the work-tree bytes of some paths."""

    def __init__(self, tree: Tree, base_commit: Optional[str]):
        self.tree = tree
        self.dir = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-idx-"))
        self.file = self.dir / "index"
        self._restores = 0
        self._entries: Dict[tuple, Optional[Tuple[str, str]]] = {}
        if base_commit:
            self.tree.must("read-tree", base_commit, env=self.env)

    @property
    def env(self) -> Dict[str, str]:
        return {"GIT_INDEX_FILE": str(self.file)}

    def git(self, *args: str, **kw) -> GitResult:
        return self.tree.git(*args, env=self.env, **kw)

    def load_worktree(self, paths: Iterable[str]) -> Dict[str, Optional[Tuple[bytes, str]]]:
        """Make the scratch entries of ``paths`` equal the work tree's current bytes (read through the
        links the policy allows); returns what was read, per path."""
        lines = []
        read: Dict[str, Optional[Tuple[bytes, str]]] = {}
        for rel in sorted(set(paths)):
            got = read[rel] = self.tree.read_worktree(rel)
            if got is None:
                lines.append(f"0 {'0' * 40}\t{rel}\n")
            else:
                data, mode = got
                lines.append(f"{mode} {self.tree.hash_blob(data)}\t{rel}\n")
        if lines:
            self.tree.must("update-index", "--index-info", env=self.env, stdin="".join(lines).encode())
        return read

    def snapshot(self) -> bytes:
        return self.file.read_bytes() if self.file.exists() else b""

    def restore(self, snap: bytes) -> None:
        self._restores += 1
        if snap:
            self.file.write_bytes(snap)
        elif self.file.exists():
            self.file.unlink()

    def _state(self) -> tuple:
        """Changes whenever the index does: git replaces the file (a new inode) on every write, and
        restore() counts its own."""
        try:
            st = os.stat(self.file)
        except FileNotFoundError:
            return (self._restores,)
        return (self._restores, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def entry(self, rel: str) -> Optional[Tuple[str, str]]:
        """(mode, sha) of a stage-0 entry, or None."""
        key = (rel, self._state())
        if key in self._entries:
            return self._entries[key]
        res = self.git("ls-files", "-s", "-z", "--", rel)
        found = None
        for rec in res.out.split("\0"):
            if not rec:
                continue
            meta, _, name = rec.partition("\t")
            mode, sha, stage = meta.split()
            if name == rel and stage == "0":
                found = (mode, sha)
                break
        if len(self._entries) > 256:
            self._entries.clear()
        self._entries[key] = found
        return found

    def content(self, rel: str) -> Optional[bytes]:
        e = self.entry(rel)
        return None if e is None else self.tree.read_blob(e[1])

    def apply(
        self,
        patch: Path,
        *,
        reverse: bool = False,
        threeway: bool = False,
        check: bool = False,
        ignore_whitespace: bool = False,
    ) -> GitResult:
        args = ["apply", "--cached", "-v", "--whitespace=nowarn"]
        if reverse:
            args.append("-R")
        if ignore_whitespace:
            args.append("--ignore-whitespace")
        if threeway:
            args.append("--3way")
        if check:
            args.append("--check")
        return self.git(*args, str(patch))

    def write_tree(self) -> str:
        return self.tree.must("write-tree", env=self.env).out.strip()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# -- commit metadata (like git am) ----------------------------------------------------------------
@dataclass
class MailInfo:
    author: str
    email: str
    date: str
    subject: str
    body: str

    @property
    def message(self) -> str:
        body = self.body.strip("\n")
        return f"{self.subject}\n\n{body}\n" if body else f"{self.subject}\n"


def mailinfo(tree: Tree, patch_bytes: bytes) -> Optional[MailInfo]:
    """Author, date, subject and body of a ``git format-patch`` file, parsed by ``git mailinfo``."""
    with tempfile.TemporaryDirectory(prefix="deeplab-nnapi-mail-") as d:
        msg, pat = Path(d) / "msg", Path(d) / "patch"
        res = tree.git("mailinfo", "--encoding=UTF-8", str(msg), str(pat), stdin=patch_bytes)
        if not res.ok:
            return None
        fields = {}
        for line in res.out.splitlines():
            key, _, value = line.partition(": ")
            fields[key.strip()] = value.strip()
        body = msg.read_text(encoding="utf-8", errors="replace") if msg.exists() else ""
    if not fields.get("Author") or not fields.get("Email") or not fields.get("Subject"):
        return None
    return MailInfo(fields["Author"], fields["Email"], fields.get("Date", ""), fields["Subject"], body)


def commit_tree(tree: Tree, tree_sha: str, parent: Optional[str], info: MailInfo) -> str:
    env = {"GIT_AUTHOR_NAME": info.author, "GIT_AUTHOR_EMAIL": info.email}
    if info.date:
        env["GIT_AUTHOR_DATE"] = info.date
    if not tree.committer_known():
        env.update({"GIT_COMMITTER_NAME": info.author, "GIT_COMMITTER_EMAIL": info.email})
    args = ["commit-tree", tree_sha, "-F", "-"]
    if parent:
        args[2:2] = ["-p", parent]
    return tree.must(*args, env=env, stdin=info.message.encode("utf-8")).out.strip()


def move_head(tree: Tree, new: str, old: Optional[str], reason: str) -> None:
    args = ["update-ref", "-m", reason, "HEAD", new]
    if old:
        args.append(old)
    tree.must(*args)


def reset_paths(tree: Tree, paths: Sequence[str]) -> None:
    """Make the real index entries of ``paths`` match HEAD (after a --commit run)."""
    if paths:
        tree.must("reset", "-q", "HEAD", "--", *sorted(set(paths)))
