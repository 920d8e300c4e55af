"""Writing pictures: every file atomically, and a set of files all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fileio import atomic_write

FIGURE_FORMATS = ("svg", "png")


def figure_format(path: Union[str, Path], option: str = "--diagram") -> str:
    """``svg`` or ``png`` from the file name; anything else is a usage error."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        kind = f".{suffix}" if suffix else "(no extension)"
        raise UsageError(f"{option} {path}: unknown picture type {kind}; use .svg or .png")
    return suffix


def _mkdir(directory: Path, created: List[Path]) -> None:
    missing = [d for d in [directory, *directory.parents] if not d.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        created.extend(reversed(missing))  # parents first
    except FileExistsError:
        raise UsageError(f"{directory}: exists and is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{directory}: cannot create directory ({exc.strerror or exc})") from None


def write_files(files: Sequence[Tuple[Path, bytes]], fsync: bool = False) -> List[Path]:
    """Write every (path, data), each atomically (``fsync``: each flushed to disk before it replaces the
    old file); if one fails, the ones already written are put back as they were (removed, or their old
    bytes restored; directories made for them removed) and the error is one line."""
    done: List[Tuple[Path, Optional[bytes]]] = []
    created: List[Path] = []
    seen: Dict[Path, bool] = {}
    try:
        for path, data in files:
            path = Path(path)
            if path in seen:
                raise UsageError(f"{path}: two pictures would have the same name")
            seen[path] = True
            _mkdir(path.parent, created)
            if path.is_dir():
                raise UsageError(f"{path}: is a directory")
            old = path.read_bytes() if path.is_file() else None
            try:
                atomic_write(path, data, fsync=fsync)
            except OSError as exc:
                raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
            done.append((path, old))
    except BaseException:
        for path, old in reversed(done):
            try:
                if old is None:
                    path.unlink()
                else:
                    atomic_write(path, old, fsync=False)
            except OSError:
                pass
        for d in reversed(created):  # directories made for this set, if they stayed empty
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    return [p for p, _ in done]
