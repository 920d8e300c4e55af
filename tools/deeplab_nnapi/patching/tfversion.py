"""TensorFlow versions: read a source tree's own version, parse ``--tf-version``, match the two.

A TF source tree states its version in one or both of:

* ``tensorflow/core/public/version.h`` (every release up to today)::

      #define TF_MAJOR_VERSION 2
      #define TF_MINOR_VERSION 4
      #define TF_PATCH_VERSION 0
      #define TF_VERSION_SUFFIX "-rc0"

  Newer trees generate these macros from the Bazel file below; then ``version.h`` holds no literal
  numbers and is skipped.
* ``tensorflow/tf_version.bzl`` (TF 2.18 and later): ``TF_VERSION = "2.20.0"``, with the pre-release
  suffix in ``tensorflow/tf_version.default.bzl`` (``SEMANTIC_VERSION_SUFFIX = "-rc0"``) when literal.

When both give a version they must agree; a tree that states two different versions is refused.
Pre-release suffixes ("-rc0", "-alpha", "-beta.1") are kept for display and for an exact
``--tf-version 2.5.0-rc0`` request; patch selection uses the release number (``2.5.0-rc0`` has the
code shape of 2.5, see :attr:`TreeVersion.release`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from packaging.version import InvalidVersion, Version

from deeplab_nnapi.errors import UsageError

VERSION_H = "tensorflow/core/public/version.h"
VERSION_BZL = "tensorflow/tf_version.bzl"
VERSION_DEFAULT_BZL = "tensorflow/tf_version.default.bzl"

_DEFINE = re.compile(
    r"^[ \t]*#[ \t]*define[ \t]+(TF_(?:MAJOR|MINOR|PATCH)_VERSION)[ \t]+(\d+)([A-Za-z0-9.\-]*)[ \t]*(?://.*)?$",
    re.M,
)
_SUFFIX_H = re.compile(r'^[ \t]*#[ \t]*define[ \t]+TF_VERSION_SUFFIX[ \t]+"([^"]*)"', re.M)
_BZL = re.compile(r'^TF_VERSION[ \t]*=[ \t]*"([^"]+)"', re.M)
_BZL_SUFFIX = re.compile(r'^SEMANTIC_VERSION_SUFFIX[ \t]*=[ \t]*"([^"]*)"', re.M)
_REQUEST = re.compile(r"^(\d+)(?:\.(x|\*|\d+)(?:\.(\d+))?)?(-?(?:a|alpha|b|beta|rc|dev)[.\-]?\d*)?$", re.I)
_SUFFIX = re.compile(r"^-?(?:(a|alpha)|(b|beta)|(rc)|(dev))[.\-]?(\d*)$", re.I)

#: The TF major version this tool supports.
SUPPORTED_MAJOR = 2


def _normalise_suffix(suffix: str) -> str:
    """'-rc0', 'rc.1', '-alpha' -> PEP 440 pre-release text 'rc0', 'rc1', 'a0'; '' stays ''."""
    suffix = suffix.strip()
    if not suffix:
        return ""
    m = _SUFFIX.match(suffix)
    if not m:
        raise ValueError(suffix)
    kind = "a" if m.group(1) else "b" if m.group(2) else "rc" if m.group(3) else ".dev"
    return f"{kind}{m.group(5) or '0'}"


def _to_version(numbers: str, suffix: str) -> Version:
    return Version(numbers + _normalise_suffix(suffix))


@dataclass(frozen=True)
class TreeVersion:
    """The version a TensorFlow source tree states about itself."""

    version: Version  # PEP 440, e.g. Version("2.5.0rc0")
    text: str  # as upstream writes it, e.g. "2.5.0-rc0"
    sources: tuple  # the files it was read from (relative paths)

    @property
    def release(self) -> Version:
        """The release number without pre-release/dev suffix (what patch selection uses)."""
        return Version(self.version.base_version)

    def __str__(self) -> str:
        return self.text


def _from_version_h(text: str) -> Optional[tuple]:
    found = {name: (int(num), extra) for name, num, extra in _DEFINE.findall(text)}
    if not {"TF_MAJOR_VERSION", "TF_MINOR_VERSION", "TF_PATCH_VERSION"} <= found.keys():
        return None
    major, minor = found["TF_MAJOR_VERSION"][0], found["TF_MINOR_VERSION"][0]
    patch, patch_extra = found["TF_PATCH_VERSION"]
    m = _SUFFIX_H.search(text)
    suffix = (patch_extra or "") + (m.group(1) if m else "")
    return f"{major}.{minor}.{patch}", suffix


def _from_bzl(text: str, default_text: Optional[str]) -> Optional[tuple]:
    m = _BZL.search(text)
    if not m:
        return None
    numbers = m.group(1).strip()
    suffix = ""
    m2 = _BZL_SUFFIX.search(default_text or "")
    if m2:
        suffix = m2.group(1)
    mnum = re.match(r"^(\d+\.\d+\.\d+)(.*)$", numbers)
    if not mnum:
        return None
    return mnum.group(1), (mnum.group(2) or "") + suffix


def read_tree_version(tree: Path) -> TreeVersion:
    """Read the TF version a source tree states (see the module doc). Raises UsageError, also when the
    tree has no version file (see :func:`find_tree_version` for trees that may lack one)."""
    found = find_tree_version(tree)
    if found is None:
        raise UsageError(
            f"{tree}: cannot tell the TensorFlow version: neither {VERSION_H} nor {VERSION_BZL} "
            "states one (is this the top of a TensorFlow source tree?)"
        )
    return found


def find_tree_version(tree: Path) -> Optional[TreeVersion]:
    """The TF version a source tree states, or None when no version file states one (a tflite-only
    tree, a trimmed vendor tree). Raises UsageError on an unreadable or contradictory version."""
    tree = Path(tree)
    found = []
    for rel in (VERSION_H, VERSION_BZL):
        path = tree / rel
        try:
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if rel == VERSION_H:
                got = _from_version_h(text)
            else:
                default = tree / VERSION_DEFAULT_BZL
                got = _from_bzl(
                    text, default.read_text(encoding="utf-8", errors="replace") if default.is_file() else None
                )
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the TensorFlow version: {exc.strerror or exc}") from None
        if got is None:
            continue
        numbers, suffix = got
        try:
            version = _to_version(numbers, suffix)
        except (ValueError, InvalidVersion):
            raise UsageError(f"{tree / rel}: unreadable TensorFlow version {numbers + suffix!r}") from None
        found.append((rel, numbers + suffix, version))
    if not found:
        return None
    if len(found) == 2 and found[0][2] != found[1][2]:
        raise UsageError(
            f"{tree}: the tree states two versions: {found[0][1]} in {found[0][0]} and "
            f"{found[1][1]} in {found[1][0]}"
        )
    rel, text, version = found[0]
    return TreeVersion(version=version, text=text, sources=tuple(f[0] for f in found))


@dataclass(frozen=True)
class VersionRequest:
    """A ``--tf-version`` request: ``2.x`` (any 2.x), ``2.N`` (any 2.N.M) or ``2.N.M`` (exact)."""

    text: str
    major: int
    minor: Optional[int] = None
    patch: Optional[int] = None
    pre: str = ""  # normalised pre-release ("rc0"), only for an exact request that names one

    def matches(self, tree: TreeVersion) -> bool:
        v = tree.version
        if v.major != self.major:
            return False
        if self.minor is not None and v.minor != self.minor:
            return False
        if self.patch is not None and v.micro != self.patch:
            return False
        if self.pre:
            return str(v) == f"{self.major}.{self.minor}.{self.patch}{self.pre}"
        return True


def parse_request(text: str) -> VersionRequest:
    """Parse ``--tf-version``: '2.x', '2', '2.N', '2.N.M' (optionally '2.N.M-rc0'). Raises UsageError."""
    raw = (text or "").strip()
    m = _REQUEST.match(raw.lstrip("vV"))
    if not m:
        raise UsageError(f"--tf-version {text!r}: expected 2.x, 2.N or 2.N.M (e.g. 2.x, 2.4, 2.4.1)")
    major = int(m.group(1))
    minor_s, patch_s, pre_s = m.group(2), m.group(3), m.group(4)
    if major != SUPPORTED_MAJOR:
        raise UsageError(f"--tf-version {text!r}: only TensorFlow {SUPPORTED_MAJOR}.x is supported")
    minor = None if minor_s in (None, "x", "X", "*") else int(minor_s)
    if minor is None and patch_s is not None:
        raise UsageError(f"--tf-version {text!r}: expected 2.x, 2.N or 2.N.M")
    patch = int(patch_s) if patch_s is not None else None
    pre = ""
    if pre_s:
        if patch is None:
            raise UsageError(f"--tf-version {text!r}: a pre-release suffix needs a full 2.N.M version")
        pre = _normalise_suffix(pre_s)
    return VersionRequest(text=raw, major=major, minor=minor, patch=patch, pre=pre)


def version_from_request(request: VersionRequest) -> Optional[TreeVersion]:
    """The version a tree without a version file is taken to be: ``2.N``/``2.N.M`` as asked (the release
    line is what selects a patch), None for ``2.x`` (then the text itself decides)."""
    if request.minor is None:
        return None
    numbers = f"{request.major}.{request.minor}.{request.patch if request.patch is not None else 0}"
    text = request.text if request.patch is not None else f"{request.major}.{request.minor}"
    return TreeVersion(version=Version(numbers + request.pre), text=text, sources=("--tf-version",))


def check_request(request: VersionRequest, tree: TreeVersion, tree_path: Path) -> None:
    """Raise UsageError naming both versions when the tree is not the version asked for."""
    if not request.matches(tree):
        raise UsageError(
            f"--tf-version {request.text} does not match the tree: {tree_path} is TensorFlow {tree.text} "
            f"(from {', '.join(tree.sources)})"
        )
