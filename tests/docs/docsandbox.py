"""The scratch directory a documentation block runs in, with the files the docs name.

Every block gets a fresh one (blocks do not depend on each other). What is there (a block gets the lazily
made parts only when its text names them):

====================================  =====================================================================
``./google.tflite``                   Google's quantized DeepLab v3 as Google exported it (the reference
                                      pascal 513 os8 model edited back: align_corners=True, int64 ArgMax)
``./model.tflite``                    a model this project makes: the reference pascal 513 os8 model
``./deeplabv3_mnv2_*.tflite``         the eight reference models under their names
``./profile.txt``                     a phone's benchmark_model profile of ``google.tflite`` (the seed's)
``./out/models/``                     two reference models, as the container build leaves them
``./photos/``, ``~/photos/``          two small photos (PNG with Pillow, else ``.npy``)
``./frozen.pb``                       a DeepLab-shaped frozen graph, 513x513, 21 classes (needs TensorFlow)
``~/src/tensorflow``                  a TensorFlow 2.14.0 stand-in (git): version.h and the NNAPI delegate
``~/src/our-tf-fork``                 the same, for the ``--commit`` workflow
``~/src/tflite-tree``                 the delegate without a version file
``~/src/LiteRT``                      a LiteRT stand-in (``tflite/delegates/nnapi``, ``litert/version.bzl``)
``~/src/models``                      a tensorflow/models stand-in: DeepLab's three patched files
``./tools``, ``./docs``, ...          links to the repository's folders, for ``python tools/...`` lines
====================================  =====================================================================

``HOME`` is a fresh directory inside the sandbox; the commands of pyproject.toml's ``[project.scripts]`` and
``python`` run this checkout's code (shims in ``PATH``, ``PYTHONPATH=tools``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, Optional

import stand_in_trees
from reference_support import MODELS_DIR, PASCAL_513_OS8, SEED_PROFILE, google_shaped

REPO_ROOT = Path(__file__).resolve().parents[2]
LINKED = ("tools", "docs", "docker", "ci", "patches", "tests")
OUT_MODELS = ("deeplabv3_mnv2_pascal_257_os16_quant.tflite", "deeplabv3_mnv2_pascal_513_os8_quant.tflite")

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib


def console_scripts() -> Dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return dict(project["scripts"])


def make_shims(bindir: Path) -> Path:
    """``python``/``python3`` and every console script, running this interpreter on this checkout."""
    bindir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        p = bindir / name
        p.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        p.chmod(0o755)
    for name, target in console_scripts().items():
        module, _, func = target.partition(":")
        p = bindir / name
        p.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
        p.chmod(0o755)
    return bindir


class Sandbox:
    """A block's working directory (``work``) and home (``home``)."""

    def __init__(self, root: Path, google_bytes: bytes, frozen_graph: Optional[Path] = None):
        self.root = root
        self.work = root / "work"
        self.home = root / "home"
        self.work.mkdir(parents=True)
        self.home.mkdir()
        self._google = google_bytes
        self._frozen = frozen_graph

    def prepare(self, text: str) -> None:
        w = self.work
        (w / "google.tflite").write_bytes(self._google)
        shutil.copyfile(PASCAL_513_OS8, w / "model.tflite")
        for model in sorted(MODELS_DIR.glob("*.tflite")):
            (w / model.name).symlink_to(model)
        shutil.copyfile(SEED_PROFILE, w / "profile.txt")
        for name in LINKED:
            (w / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
        if "out/models" in text:
            (w / "out" / "models").mkdir(parents=True)
            for name in OUT_MODELS:
                shutil.copyfile(MODELS_DIR / name, w / "out" / "models" / name)
        if "photos" in text:
            for d in (w / "photos", self.home / "photos"):
                write_photos(d)
        if "frozen.pb" in text and self._frozen is not None:
            shutil.copyfile(self._frozen, w / "frozen.pb")
        for name, build in stand_in_trees.TREES.items():
            if f"~/src/{name}" in text:
                build(self.home / "src" / name)

    def env(self, bindir: Path) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "PATH": os.pathsep.join([str(bindir), str(Path(sys.executable).parent), env.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tools"), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep),
            "DEEPLAB_NNAPI_REFERENCE": str(MODELS_DIR.parent),
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        env.pop("DEEPLAB_NNAPI_PATCHES", None)
        return env


def write_photos(d: Path) -> None:
    """Two small photo-like images: a bright figure on a darker ground, and a gradient."""
    import numpy as np

    d.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:120, 0:160]
    figure = np.stack([60 + yy // 2, 90 + xx // 4, 120 + 0 * xx], -1).astype(np.uint8)
    figure[30:100, 60:100] = (200, 170, 150)
    gradient = np.stack([xx * 255 // 159, yy * 255 // 119, 255 - xx * 255 // 159], -1).astype(np.uint8)
    try:
        from PIL import Image
    except ImportError:
        np.save(d / "figure.npy", figure)
        np.save(d / "gradient.npy", gradient)
        return
    Image.fromarray(figure).save(d / "figure.png")
    Image.fromarray(gradient).save(d / "gradient.png")


def google_bytes() -> bytes:
    return google_shaped(PASCAL_513_OS8.read_bytes())
