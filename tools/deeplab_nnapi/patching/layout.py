"""What kind of tree a ``--tf-dir`` is, where its NNAPI delegate is, and which version it is.

Three layouts carry the delegate:

* ``tensorflow``: a TensorFlow source tree: ``tensorflow/lite/delegates/nnapi/nnapi_delegate.cc`` and a
  version file (``tensorflow/core/public/version.h`` or ``tensorflow/tf_version.bzl``); the version must
  match ``--tf-version`` and selects the patch variant;
* ``tflite-only``: the same delegate path but no version file (a distribution's packaging of TFLite, a
  trimmed vendor tree). ``--tf-version 2.N[.M]`` is trusted as the tree's release line (the report says
  so); with ``--tf-version 2.x`` the text itself decides: every variant for the layout is tried, and the
  shapes are distinct, so at most one fits;
* ``litert``: google-ai-edge/LiteRT, the delegate's home since TensorFlow 2.18-2.20:
  ``tflite/delegates/nnapi/nnapi_delegate.cc``. Its version is LiteRT's own (``litert/version.bzl``), not a
  TensorFlow release, so the variant is chosen by the text; ``--tf-version`` is recorded, not matched.

The layout is a data table (:data:`LAYOUTS`); a patch names the layout it is written for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.tfversion import (
    TreeVersion,
    VersionRequest,
    check_request,
    find_tree_version,
    version_from_request,
)
from deeplab_nnapi.patching.treefiles import entry_exists


@dataclass(frozen=True)
class LayoutSpec:
    name: str
    delegate: str  # path of nnapi_delegate.cc in such a tree
    versioned: bool  # whether a TensorFlow version selects the patch


#: Checked in this order; the first whose delegate file exists names the tree.
LAYOUTS: Tuple[LayoutSpec, ...] = (
    LayoutSpec("tensorflow", "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc", versioned=True),
    LayoutSpec("litert", "tflite/delegates/nnapi/nnapi_delegate.cc", versioned=False),
)

LITERT_VERSION_FILES = (
    ("litert/version.bzl", re.compile(r'^LITERT_FULL_VERSION\s*=\s*"([^"]+)"', re.M)),
    ("litert/version.bzl", re.compile(r'^LITERT_EXPERIMENTAL_VERSION\s*=\s*"([^"]+)"', re.M)),
)


@dataclass(frozen=True)
class TreeLayout:
    name: str  # tensorflow | tflite-only | litert
    patch_layout: str  # the layout a patch must be written for (tflite-only trees take tensorflow patches)
    delegate: str
    #: the TensorFlow version that selects the variant; None = the text decides (by shape)
    version: Optional[TreeVersion]
    shown_version: Optional[str]  # what the report calls the version
    version_source: str  # where it came from, or why it is trusted / unknown


def _litert_version(tree: Path) -> Tuple[Optional[str], str]:
    parts = []
    for rel, rx in LITERT_VERSION_FILES:
        p = tree / rel
        try:
            if not p.is_file():
                continue
            m = rx.search(p.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise UsageError(f"{p}: cannot read the LiteRT version: {exc.strerror or exc}") from None
        if m:
            parts.append(m.group(1))
    if not parts:
        return (
            None,
            "LiteRT tree without litert/version.bzl: version unknown; the variant is chosen by its text",
        )
    shown = parts[0] + (f" (experimental {parts[1]})" if len(parts) > 1 and parts[1] != parts[0] else "")
    return (
        f"LiteRT {shown}",
        "litert/version.bzl; LiteRT versions are not TensorFlow releases: the variant is chosen by its text",
    )


def detect(tree: Path, request: Optional[VersionRequest]) -> TreeLayout:
    """The layout and version of a ``--tf-dir``. Raises UsageError when it holds no NNAPI delegate, or
    when its version file contradicts ``request``."""
    tree = Path(tree)
    found = find_tree_version(tree)
    if found is not None:  # a TensorFlow tree states its version (the delegate's absence shows on applying)
        if request is not None:
            check_request(request, found, tree)
        spec = LAYOUTS[0]
        return TreeLayout(spec.name, spec.name, spec.delegate, found, found.text, ", ".join(found.sources))
    for spec in LAYOUTS:
        # anything there counts, even a dangling symlink: the link policy then names what is wrong with it
        if not entry_exists(tree / spec.delegate, "looking for the NNAPI delegate"):
            continue
        if not spec.versioned:
            shown, source = _litert_version(tree)
            if request is not None:
                source += f"; --tf-version {request.text} noted, not matched"
            return TreeLayout(spec.name, spec.name, spec.delegate, None, shown, source)
        if request is None:
            raise UsageError(
                f"{tree}: no version file (tensorflow/core/public/version.h, tensorflow/tf_version.bzl); "
                "say which release it is with --tf-version 2.N, or 2.x to let the text decide"
            )
        trusted = version_from_request(request)
        if trusted is None:
            return TreeLayout(
                "tflite-only",
                spec.name,
                spec.delegate,
                None,
                None,
                "no version file; --tf-version 2.x: the variant is chosen by the text's shape",
            )
        return TreeLayout(
            "tflite-only",
            spec.name,
            spec.delegate,
            trusted,
            trusted.text,
            f"no version file; --tf-version {request.text} trusted",
        )
    raise UsageError(
        f"{tree}: no NNAPI delegate here (looked for "
        + " and ".join(s.delegate for s in LAYOUTS)
        + ") and no TensorFlow version file; is this the top of a TensorFlow or LiteRT tree?"
    )
