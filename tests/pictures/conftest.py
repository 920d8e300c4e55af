"""Fixtures for the pictures tests: the reference models and the Google-shaped fixture (helpers from
tests/check/check_support.py), and the sample photos."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List

import pytest

CHECK_DIR = Path(__file__).resolve().parents[1] / "check"
if str(CHECK_DIR) not in sys.path:
    sys.path.insert(0, str(CHECK_DIR))

from check_support import (  # noqa: E402
    MODELS_DIR,
    PASCAL_513_OS8,
    REFERENCE_MODELS,
    SEED_PROFILE,
    google_shaped,
)


def _missing(message: str) -> None:
    """Reference material absent: skip on a developer's machine, fail in CI (as tests/check does)."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: ../shared/reference must be beside the clone)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def reference_models() -> List[Path]:
    if not REFERENCE_MODELS:
        _missing(f"reference models not found in {MODELS_DIR}")
    return REFERENCE_MODELS


@pytest.fixture(scope="session")
def pascal_513_os8() -> Path:
    if not PASCAL_513_OS8.is_file():
        _missing(f"{PASCAL_513_OS8} not found")
    return PASCAL_513_OS8


@pytest.fixture(scope="session")
def seed_profile() -> Path:
    if not SEED_PROFILE.is_file():
        _missing(f"{SEED_PROFILE} not found")
    return SEED_PROFILE


@pytest.fixture(scope="session")
def google_model(tmp_path_factory, pascal_513_os8) -> Path:
    """Google's original export rebuilt from the reference model (align_corners=True, int64 ArgMax)."""
    path = tmp_path_factory.mktemp("google") / "deeplabv3_mnv2_pascal_513_os8_google_shaped.tflite"
    path.write_bytes(google_shaped(pascal_513_os8.read_bytes()))
    return path


@pytest.fixture(scope="session")
def litert():
    """ai-edge-litert and the sample photos' packages, or skip (the 'export' and 'images' extras)."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("skimage")
    pytest.importorskip("PIL")


@pytest.fixture(scope="session")
def photos(litert):
    from deeplab_nnapi.images import sample_images

    return {im.name: im for im in sample_images()}
