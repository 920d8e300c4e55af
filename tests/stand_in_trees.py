"""Small stand-in source trees for the tests that run the tools as a user would (the docs tests, the wheel
test): a TensorFlow tree, a tflite-only tree, a LiteRT tree and a tensorflow/models tree, each holding only
the files the patch set touches (plus a version file), as git repositories.

No upstream file is copied: the TensorFlow-side files are rebuilt from the real patches' own pre-images
(``apply_helpers.preimage_from_patch``: the hunks' context at their line numbers, filler elsewhere), the
DeepLab files are the test stand-ins of ``deeplab_like.py`` (which the patch set's rule patches). A uniquely
named module at the top of tests/, so test files in any folder can import it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Dict

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
PATCHES = REPO_ROOT / "patches"
if str(TESTS / "apply") not in sys.path:
    sys.path.insert(0, str(TESTS / "apply"))

from apply_helpers import make_repo, preimage_from_patch, version_h  # noqa: E402

TF_SHAPE_C = PATCHES / "tensorflow" / "shape-c" / "0001-lite-nnapi-delegate-large-average-pool-windows.patch"
LITERT_SHAPE_C = PATCHES / "litert" / "shape-c" / "0001-lite-nnapi-delegate-large-average-pool-windows.patch"
#: The TensorFlow release the TensorFlow stand-in says it is (a shape-c release).
TF_VERSION = (2, 14, 0)


def _delegate(patch: Path) -> Dict[str, str]:
    return preimage_from_patch(patch.read_bytes())


def tensorflow_tree(path: Path) -> Path:
    """A TensorFlow 2.14.0 stand-in: ``version.h`` and the NNAPI delegate (git repository)."""
    files = _delegate(TF_SHAPE_C)
    files["tensorflow/core/public/version.h"] = version_h(*TF_VERSION)
    files["README.md"] = "TensorFlow stand-in for the tests: only the files the patch set touches.\n"
    return make_repo(path, files, message="TensorFlow 2.14.0 stand-in")


def tflite_only_tree(path: Path) -> Path:
    """The delegate without a version file (a trimmed vendor tree), as a git repository."""
    return make_repo(path, _delegate(TF_SHAPE_C), message="tflite-only stand-in")


def litert_tree(path: Path) -> Path:
    """A google-ai-edge/LiteRT stand-in: ``tflite/delegates/nnapi/`` and ``litert/version.bzl``."""
    files = _delegate(LITERT_SHAPE_C)
    files["litert/version.bzl"] = 'LITERT_FULL_VERSION = "2.0.2"\n'
    return make_repo(path, files, message="LiteRT stand-in")


def models_tree(path: Path) -> Path:
    """A tensorflow/models stand-in: DeepLab's three patched files in their final upstream layout
    (test text, see deeplab_like.py), as a git repository."""
    from deeplab_like import files

    return make_repo(path, files("final"), message="tensorflow/models stand-in")


#: name under ~/src in the docs -> builder
TREES: Dict[str, Callable[[Path], Path]] = {
    "tensorflow": tensorflow_tree,
    "tflite-tree": tflite_only_tree,
    "LiteRT": litert_tree,
    "models": models_tree,
    "our-tf-fork": tensorflow_tree,
}
