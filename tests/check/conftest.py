"""Shared fixtures for the check_delegation tests (helpers live in check_support.py)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
from check_support import MODELS_DIR, PASCAL_513_OS8, REFERENCE_MODELS, SEED_PROFILE, google_shaped


@pytest.fixture(scope="session")
def reference_models() -> List[Path]:
    if not REFERENCE_MODELS:
        pytest.skip(f"reference models not found in {MODELS_DIR}")
    return REFERENCE_MODELS


@pytest.fixture(scope="session")
def seed_profile() -> Path:
    if not SEED_PROFILE.is_file():
        pytest.skip(f"{SEED_PROFILE} not found")
    return SEED_PROFILE


@pytest.fixture(scope="session")
def pascal_513_os8() -> Path:
    if not PASCAL_513_OS8.is_file():
        pytest.skip(f"{PASCAL_513_OS8} not found")
    return PASCAL_513_OS8


@pytest.fixture(scope="session")
def google_model(tmp_path_factory, pascal_513_os8) -> Path:
    """The Google-shaped fixture, written to a file."""
    path = tmp_path_factory.mktemp("google") / "deeplabv3_mnv2_pascal_513_os8_google_shaped.tflite"
    path.write_bytes(google_shaped(pascal_513_os8.read_bytes()))
    return path
