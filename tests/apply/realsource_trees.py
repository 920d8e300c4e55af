"""Real upstream trees for the opt-in ``realsource`` tests and tests/benchmarks/verify_upstream.py: states of
a git repository (a clone, or a bare one) unpacked into small trees of the files the patches touch.

Nothing here is upstream text: the trees are made at run time from a repository the user points to.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

MODELS_FILES = (
    "research/deeplab/core/utils.py",
    "research/deeplab/model.py",
    "research/deeplab/export_model.py",
)
TF_FILES = (
    "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc",
    "tensorflow/core/public/version.h",
    "tensorflow/tf_version.bzl",
)
LITERT_FILES = ("tflite/delegates/nnapi/nnapi_delegate.cc", "litert/version.bzl")
FINAL_UPSTREAM = "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"
QUANTIZATION_RELEASE = "59c218f559388be1613f4bc6c29b5dd5cc79df9d"

_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git_dir(path: Path) -> Path:
    path = Path(path).expanduser()
    return path / ".git" if (path / ".git").exists() else path


def git(gd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={gd}", *args], capture_output=True, check=True, env=_ENV
    ).stdout.decode()


def commits_touching(
    gd: Path, ref: str, paths: Sequence[str], since: Optional[str] = None
) -> List[Tuple[str, str, str]]:
    """(commit, date, subject) of every commit reachable from ref that changed ``paths``, newest first;
    with ``since``, only that commit and its descendants."""
    rng = f"{since}^..{ref}" if since else ref
    out = git(gd, "log", "--format=%H%x09%ad%x09%s", "--date=short", rng, "--", *paths)
    return [tuple(line.split("\t", 2)) for line in out.splitlines() if line]


def unpack(
    gd: Path,
    commit: str,
    paths: Sequence[str],
    dest: Path,
    repo: bool = True,
    rename: Optional[Dict[str, str]] = None,
) -> Path:
    """The files ``paths`` (those that exist) of ``commit`` in ``dest``; a git repository with one commit
    unless ``repo`` is False (a plain directory, as an unpacked release would be)."""
    present = [p for p in paths if git(gd, "ls-tree", commit, "--", p).strip()]
    data = subprocess.run(
        ["git", f"--git-dir={gd}", "archive", "--format=tar", commit, "--", *present],
        capture_output=True,
        check=True,
        env=_ENV,
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            name = (rename or {}).get(m.name, m.name)
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(m).read())
    if repo:
        subprocess.run(["git", "init", "-q", str(dest)], check=True, env=_ENV)
        subprocess.run(["git", "add", "-A"], cwd=dest, check=True, env=_ENV)
        subprocess.run(["git", "commit", "-qm", f"state of {commit}"], cwd=dest, check=True, env=_ENV)
    return dest


def snapshot(tree: Path) -> Dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(tree).parts
    }
