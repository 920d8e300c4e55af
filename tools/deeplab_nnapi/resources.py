"""Where the files the tools read at run time are, in a clone and in an installed wheel.

* Data tables (``data/*.toml``): inside the package in both cases (``deeplab_nnapi/data/``).
* The patch set: a clone keeps it at the top of the repository (``patches/``); the wheel carries the same
  files inside the package (``deeplab_nnapi/patches/``, mapped there at build time by ``setup.py``).
  ``$DEEPLAB_NNAPI_PATCHES`` names another patch set and wins over both.
* The checkout itself (the Docker build context, ``docker/``, ``tests/``): only when running from a clone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from deeplab_nnapi import REPO_ROOT

#: The package directory (``tools/deeplab_nnapi`` in a clone, ``site-packages/deeplab_nnapi`` installed).
PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
#: The variable naming another patch set (a directory holding ``manifest.toml``).
ENV_PATCHES = "DEEPLAB_NNAPI_PATCHES"
#: The patch set inside an installed package.
BUNDLED_PATCHES = PACKAGE_DIR / "patches"
MANIFEST_NAME = "manifest.toml"


def checkout_root() -> Optional[Path]:
    """The clone this package runs from (``tools/deeplab_nnapi`` two levels down), or None when installed."""
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "tools" / "deeplab_nnapi").is_dir():
        return REPO_ROOT
    return None


def patches_dir() -> Path:
    """The patch set's directory: ``$DEEPLAB_NNAPI_PATCHES``, else the one shipped in the package (an
    installed wheel), else the clone's ``patches/``. The first that exists wins; with none, the clone's
    path (so that the error names where the patch set was looked for)."""
    env = os.environ.get(ENV_PATCHES)
    if env:
        return Path(env)
    if (BUNDLED_PATCHES / MANIFEST_NAME).is_file():
        return BUNDLED_PATCHES
    return REPO_ROOT / "patches"
