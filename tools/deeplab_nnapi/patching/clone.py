"""Cloning a tree at a tag, branch or commit (what ``--clone-tf`` / ``--clone-models`` and the Docker build
use): shallow where the server allows, nothing left behind on failure."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import git

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.gitops import git_env

DEFAULT_TF_URL = "https://github.com/tensorflow/tensorflow.git"
DEFAULT_MODELS_URL = "https://github.com/tensorflow/models.git"
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


def _check_dest(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"cannot clone into {dest}: it exists and is not an empty directory")


def _finish_clone(tmp: Path, dest: Path) -> None:
    if dest.exists():
        dest.rmdir()
    os.replace(tmp, dest)


def _clone_error(url: str, ref: str, exc: git.GitCommandError) -> UsageError:
    lines = [ln.strip() for ln in str(exc.stderr or "").splitlines() if ln.strip()]
    why = lines[-1].strip("'") if lines else str(exc)
    return UsageError(f"clone of {url} at {ref} failed: {why}")


class _Progress(git.RemoteProgress):
    """Clone progress as an occasional line through ``log`` (at most one every 5 s per stage)."""

    _NAMES = {
        git.RemoteProgress.COUNTING: "counting objects",
        git.RemoteProgress.COMPRESSING: "compressing",
        git.RemoteProgress.RECEIVING: "receiving objects",
        git.RemoteProgress.RESOLVING: "resolving deltas",
        git.RemoteProgress.CHECKING_OUT: "checking out",
    }

    def __init__(self, log):
        super().__init__()
        self.log = log
        self.last = 0.0

    def update(self, op_code, cur_count, max_count=None, message=""):
        now = time.monotonic()
        stage = op_code & self.OP_MASK
        if now - self.last < 5 and not (op_code & self.END):
            return
        self.last = now
        name = self._NAMES.get(stage, "working")
        pct = f" {100 * cur_count / max_count:.0f}%" if max_count else ""
        self.log(f"  {name}{pct}{(' ' + message) if message else ''}")


def clone(url: str, ref: str, dest: Path, *, shallow: bool = True, log=None) -> str:
    """Clone ``url`` at tag/branch/commit ``ref`` into ``dest`` (new or empty dir). Returns HEAD's sha.

    A tag or branch is cloned with ``--branch REF --depth 1``; a full commit id is fetched alone
    (``git fetch --depth 1 origin SHA``), falling back to a full fetch when the server refuses.
    Nothing is left behind on failure: the clone is made beside ``dest`` and renamed into place.
    """
    dest = Path(dest).expanduser().absolute()
    _check_dest(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.clone-", dir=dest.parent))
    start = time.monotonic()
    say = log or (lambda msg: None)
    try:
        say(f"cloning {url} at {ref} into {dest}")
        env = git_env()
        if _FULL_SHA.match(ref):
            repo = git.Repo.init(tmp)
            try:
                repo.create_remote("origin", url)
                try:
                    repo.git.fetch("origin", ref, depth=1, env=env) if shallow else repo.git.fetch(
                        "origin", ref, env=env
                    )
                except git.GitCommandError:
                    say(f"server refused fetching {ref[:12]} alone; fetching full history")
                    repo.git.fetch("origin", "--tags", env=env)
                repo.git.checkout("--detach", ref, env=env)
            finally:
                repo.close()
        else:
            kwargs = {"branch": ref, "single_branch": True}
            if shallow:
                kwargs["depth"] = 1
            try:
                repo = git.Repo.clone_from(
                    url, tmp, env=env, progress=_Progress(log) if log else None, **kwargs
                )
            except git.GitCommandError as exc:
                if not re.match(r"^[0-9a-f]{7,39}$", ref):
                    raise
                # An abbreviated commit id: full clone, then check it out.
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                say(f"{ref} is not a branch or tag; cloning full history to find the commit")
                try:
                    repo = git.Repo.clone_from(url, tmp, env=env, no_checkout=True)
                except git.GitCommandError:
                    raise exc from None
                repo.git.checkout("--detach", ref, env=env)
            repo.close()
        _finish_clone(tmp, dest)
    except git.GitCommandError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _clone_error(url, ref, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with git.Repo(dest) as repo:
        sha = repo.head.commit.hexsha
    say(f"cloned {ref} ({sha[:12]}) in {time.monotonic() - start:.1f}s")
    return sha


