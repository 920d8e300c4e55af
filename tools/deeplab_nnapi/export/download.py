"""Download checkpoints once into a cache, verify sha256, resume or restart broken downloads.

* A file already in the cache whose sha256 matches is used as is (no network).
* A download goes to ``<name>.part``; a broken one is resumed with an HTTP ``Range`` request. A server
  that ignores the range (200) or refuses it (416) gets a fresh download instead.
* The finished file is checked against the pinned sha256 and only then renamed into place
  (``os.replace``), so the cache never holds a half-written or unverified file under its final name.
  A mismatch after a resumed download restarts from zero once; a mismatch after a full download fails.
* :func:`extract_checkpoint` unpacks a checkpoint archive safely (no paths outside the target) into a
  directory named after its sha256, again through a temporary directory and a rename.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Optional

from deeplab_nnapi.errors import EXIT_FAIL, ToolError
from deeplab_nnapi.fileio import sha256_file

CHUNK = 1 << 16
USER_AGENT = "deeplab-nnapi/0.1 (+export_models)"


class DownloadError(ToolError):
    """A download failed or its content is not what the table pins (exit 1)."""

    exit_code = EXIT_FAIL


@dataclass
class FetchResult:
    path: Path
    sha256: str
    cached: bool = False  # taken from the cache without network
    resumed: bool = False  # some bytes came from an earlier, interrupted download
    attempts: int = 0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deeplab-nnapi" / "checkpoints"


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
                    transient=True)


def fetch(url: str, cache_dir: Path, sha256: Optional[str] = None, *, filename: Optional[str] = None,
          attempts: int = 3, timeout: float = 60.0, progress: bool = False) -> FetchResult:
    """Return the cached file for ``url``, downloading (and resuming) it if needed."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = filename or url.rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", ".."):
        raise DownloadError(f"{url}: cannot derive a file name")
    want = sha256.lower() if sha256 else None
    dest = cache_dir / name
    part = cache_dir / (name + ".part")

    if dest.is_file():
        got = sha256_file(dest)
        if want is None or got == want:
            return FetchResult(dest, got, cached=True)
        dest.unlink()  # a corrupt or stale cache entry: fetch again

    result = FetchResult(dest, "")
    last_error = "no attempt made"
    for attempt in range(1, max(1, attempts) + 1):
        result.attempts = attempt
        offset = part.stat().st_size if part.is_file() else 0
        try:
            complete, started_at = _download_into(url, part, offset, timeout, progress, name)
        except _RangeRefused:
            part.unlink(missing_ok=True)
            last_error = "server refused to resume the download"
            continue
        except (urllib.error.URLError, HTTPException, OSError, socket.timeout) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403, 404, 410):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            last_error = _describe(exc)
            continue
        if started_at > 0:
            result.resumed = True
        if not complete:
            last_error = "connection closed before the end of the file"
            continue
        got = sha256_file(part)
        if want is not None and got != want:
            part.unlink(missing_ok=True)
            if result.resumed:
                # The kept bytes may be from another version of the file: start again from zero once.
                result.resumed = False
                last_error = f"sha256 mismatch after resume (got {got})"
                continue
            raise DownloadError(f"{name}: sha256 mismatch: expected {want}, got {got}")
        os.replace(part, dest)
        result.sha256 = got
        return result
    raise DownloadError(f"{url}: download failed after {result.attempts} attempt(s): {last_error}")


class _RangeRefused(Exception):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}"


def _download_into(url: str, part: Path, offset: int, timeout: float, progress: bool, label: str):
    """Append to ``part`` from ``offset`` (or rewrite it); return (complete, start offset used)."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset > 0:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset > 0:
            raise _RangeRefused() from None
        raise
    with resp:
        status = getattr(resp, "status", None) or 200
        total: Optional[int] = None
        if status == 206 and offset > 0:
            m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise _RangeRefused()  # a range we did not ask for: start over
            mode = "ab"
            if m.group(3) != "*":
                total = int(m.group(3))
        else:
            offset = 0
            mode = "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        written = offset
        with _progress(progress) as bar, open(part, mode) as out:
            task = bar.add_task(label, total=total, completed=offset)
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                out.write(block)
                written += len(block)
                bar.update(task, completed=written)
            out.flush()
            os.fsync(out.fileno())
    complete = total is None or written == total
    return complete, offset


# ----------------------------------------------------------------------------------------------------
# checkpoint archives


def _safe_members(tar: tarfile.TarFile, dest: Path):
    root = dest.resolve()
    for m in tar.getmembers():
        if not (m.isfile() or m.isdir()):
            continue  # no links, devices or fifos from a download
        target = (root / m.name).resolve()
        if root != target and root not in target.parents:
            raise DownloadError(f"archive member {m.name!r} points outside the extraction directory")
        yield m


def extract_checkpoint(archive: Path, member_dir: str, prefix: str, dest_root: Path,
                       archive_sha256: Optional[str] = None) -> Path:
    """Unpack ``archive`` once; return the checkpoint path prefix (``.../model.ckpt``).

    The checkpoint is ``<member_dir>/<prefix>.index`` in the archive; when that is absent and the
    archive holds exactly one ``<prefix>.index`` elsewhere (or exactly one ``*.index`` at all, e.g.
    ``model.ckpt-30000.index``), that one is used.
    """
    archive = Path(archive)
    sha = archive_sha256 or sha256_file(archive)
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    base = archive.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    final = dest_root / f"{base}-{sha[:12]}"
    if not final.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=dest_root))
        try:
            try:
                with tarfile.open(archive) as tar:
                    members = list(_safe_members(tar, tmp))
                    if sys.version_info >= (3, 12) or hasattr(tarfile, "data_filter"):
                        tar.extractall(tmp, members=members, filter="data")
                    else:  # pragma: no cover
                        tar.extractall(tmp, members=members)
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise DownloadError(f"{archive.name}: not a readable tar archive ({exc})") from None
            try:
                os.replace(tmp, final)
            except OSError:
                if not final.is_dir():  # lost a race with another exporter: theirs is as good
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    wanted = final / member_dir / (prefix + ".index")
    if wanted.is_file():
        return wanted.with_name(prefix)
    found = sorted(final.rglob(prefix + ".index")) or sorted(final.rglob("*.index"))
    if len(found) == 1:  # the one checkpoint in the archive, wherever and however it is named
        return found[0].with_name(found[0].name[: -len(".index")])
    where = ", ".join(str(p.relative_to(final)) for p in found) or "none"
    raise DownloadError(f"{archive.name}: no checkpoint {member_dir}/{prefix}.index (found: {where})")
