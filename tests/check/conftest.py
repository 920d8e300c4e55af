"""Shared fixtures for the check_delegation tests (helpers live in check_support.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest
from check_support import MODELS_DIR, PASCAL_513_OS8, REFERENCE_MODELS, SEED_PROFILE, google_shaped


def _missing(message: str) -> None:
    """Reference material absent: a skip on a developer's machine, a failure in CI (where ../shared is
    always beside the clone), so a misplaced reference directory cannot turn the suite silently green."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: ../shared/reference must be beside the clone)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def reference_models() -> List[Path]:
    if not REFERENCE_MODELS:
        _missing(f"reference models not found in {MODELS_DIR}")
    return REFERENCE_MODELS


@pytest.fixture(scope="session")
def seed_profile() -> Path:
    if not SEED_PROFILE.is_file():
        _missing(f"{SEED_PROFILE} not found")
    return SEED_PROFILE


@pytest.fixture(scope="session")
def pascal_513_os8() -> Path:
    if not PASCAL_513_OS8.is_file():
        _missing(f"{PASCAL_513_OS8} not found")
    return PASCAL_513_OS8


@pytest.fixture(scope="session")
def google_model(tmp_path_factory, pascal_513_os8) -> Path:
    """The Google-shaped fixture, written to a file."""
    path = tmp_path_factory.mktemp("google") / "deeplabv3_mnv2_pascal_513_os8_google_shaped.tflite"
    path.write_bytes(google_shaped(pascal_513_os8.read_bytes()))
    return path
