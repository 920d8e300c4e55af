"""Reading the user's input files and writing results atomically, the same way for every tool.

* :func:`read_input` turns every way a path can fail (missing, a directory, unreadable) into one
  :class:`~deeplab_nnapi.errors.UsageError` line (exit 2);
* :func:`atomic_write` writes through a temporary file in the same directory and ``os.replace``, so a
  reader never sees a half-written file and a failure leaves the old file as it was;
* :func:`sha256_bytes` / :func:`sha256_file`: the checksums the manifests record.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Optional, Union

from deeplab_nnapi.errors import UsageError


def read_input(path: Union[str, Path], kind: str, label: Optional[str] = None) -> bytes:
    """The bytes of an input file; ``kind`` names what it should be ("a .tflite file", "a profile")."""
    p = Path(path)
    label = label or str(p)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{label}: is a directory, not {kind}") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read ({exc.strerror or exc})") from None


def atomic_write(path: Union[str, Path], data: bytes, mode: int = 0o644, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Union[str, Path]) -> str:
    """sha256 of a file, read in 1 MiB blocks (checkpoint archives are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
