"""A build context that carries local trees: ``--tf-dir``, ``--models-dir`` and ``--weights-dir``.

Public API::

    from deeplab_nnapi.container.context import LocalDirs, make_context
    dirs = LocalDirs(tf=Path("~/src/LiteRT"), models=Path("~/src/models"))
    with make_context(repo, dirs) as ctx:
        ctx.path, ctx.build_args      # {"TF_DIR": "local-trees/tf", "TF_DIR_COMMIT": "<sha>", ...}

The Dockerfile copies ``TF_DIR`` / ``MODELS_DIR`` / ``WEIGHTS_DIR`` from its build context, so a tree outside
the repository has to be put inside one. This makes a temporary context: the repository's files, and each
local directory under ``local-trees/`` (hard links where the file system allows, else copies; never the
``.git`` directory). The user's directories are only read, and the build patches its own copy. A tree
that is a git checkout gives its commit as ``TF_DIR_COMMIT`` / ``MODELS_DIR_COMMIT`` (so the report can
name it without ``.git`` in the context). Every directory is checked first (one line, exit 2): a TensorFlow or
LiteRT tree must hold an NNAPI delegate, a models tree ``research/deeplab``. A checkout with uncommitted
changes gives no commit (what is built is not that commit; the report says the commit is unknown).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from deeplab_nnapi.errors import UsageError

#: Where each local directory goes inside the context, and the build-args that name it.
PLACES = {"tf": ("local-trees/tf", "TF_DIR"), "models": ("local-trees/models", "MODELS_DIR"),
          "weights": ("local-trees/weights", "WEIGHTS_DIR")}
DELEGATES = ("tensorflow/lite/delegates/nnapi/nnapi_delegate.cc", "tflite/delegates/nnapi/nnapi_delegate.cc")
#: What the repository copy leaves out (as .dockerignore does, and local trees never ship).
SKIP = {".git", ".venv", "venv", "out", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
        ".mypy_cache", "build", "dist", "local-trees"}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class LocalDirs:
    tf: Optional[Path] = None
    models: Optional[Path] = None
    weights: Optional[Path] = None

    def any(self) -> bool:
        return any(d is not None for d in (self.tf, self.models, self.weights))


@dataclass
class Context:
    path: Path
    build_args: Dict[str, str] = field(default_factory=dict)
    temporary: bool = False

    def cleanup(self) -> None:
        if self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def check_dirs(dirs: LocalDirs) -> None:
    """One-line UsageError for a directory that is missing or is not what its option needs."""
    if dirs.tf is not None:
        if not dirs.tf.is_dir():
            raise UsageError(f"--tf-dir {dirs.tf}: not a directory")
        if not any((dirs.tf / d).is_file() for d in DELEGATES):
            raise UsageError(f"--tf-dir {dirs.tf}: no NNAPI delegate ({' or '.join(DELEGATES)}): not the top "
                             "of a TensorFlow or LiteRT tree")
    if dirs.models is not None:
        if not dirs.models.is_dir():
            raise UsageError(f"--models-dir {dirs.models}: not a directory")
        if not (dirs.models / "research" / "deeplab" / "export_model.py").is_file():
            raise UsageError(f"--models-dir {dirs.models}: no research/deeplab/export_model.py: not a "
                             "tensorflow/models tree")
    if dirs.weights is not None:
        if not dirs.weights.is_dir():
            raise UsageError(f"--weights-dir {dirs.weights}: not a directory")
        if not any(dirs.weights.glob("*.tflite")):
            raise UsageError(f"--weights-dir {dirs.weights}: no .tflite files (the published models)")


def git_commit(tree: Path) -> Optional[str]:
    """HEAD of ``tree`` when it is the top of a git checkout without uncommitted changes to tracked files
    (else what the build gets is not that commit), else None."""
    if not (tree / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "-q", "HEAD"],
                              capture_output=True, text=True, timeout=30)
        status = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    head = proc.stdout.strip()
    clean = status.returncode == 0 and not status.stdout.strip()
    return head if proc.returncode == 0 and _COMMIT.match(head) and clean else None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, skip=frozenset({".git"})) -> None:
    shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy,
                    ignore=lambda _d, names: [n for n in names if n in skip])


def _repo_files(repo: Path) -> Optional[list]:
    """The repository's files as git sees them (tracked, and untracked but not ignored), or None."""
    if not (repo / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                               "--exclude-standard"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [f for f in proc.stdout.decode("utf-8", "replace").split("\0") if f]


def make_context(repo: Path, dirs: LocalDirs, *, given: Optional[Dict[str, str]] = None,
                 workdir: Optional[Path] = None) -> Context:
    """``repo`` itself when no local directory is given; else a temporary context holding both."""
    given = given or {}
    if not dirs.any():
        return Context(Path(repo))
    check_dirs(dirs)
    for key, (_, arg) in PLACES.items():
        if getattr(dirs, key) is not None and given.get(arg):
            raise UsageError(f"--{key}-dir and --build-arg {arg} both name the {key} directory: give one")
    ctx = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-context-", dir=workdir))
    try:
        files = _repo_files(repo)
        if files is None:
            for child in Path(repo).iterdir():
                if child.name in SKIP:
                    continue
                if child.is_dir():
                    _copy_tree(child, ctx / child.name, skip=frozenset(SKIP))
                else:
                    _link_or_copy(str(child), str(ctx / child.name))
        else:
            for rel in files:
                src = Path(repo) / rel
                if rel.split("/", 1)[0] in SKIP or not src.is_file():
                    continue
                (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(str(src), str(ctx / rel))
        args: Dict[str, str] = {}
        for key, (place, arg) in PLACES.items():
            src = getattr(dirs, key)
            if src is None:
                continue
            _copy_tree(Path(src), ctx / place)
            args[arg] = place
            commit = git_commit(Path(src)) if key != "weights" else None
            if commit and not given.get(f"{arg}_COMMIT"):
                args[f"{arg}_COMMIT"] = commit
        return Context(ctx, args, temporary=True)
    except BaseException:
        shutil.rmtree(ctx, ignore_errors=True)
        raise
