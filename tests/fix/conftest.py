"""Fixtures for the fix_model tests (helpers live in fix_support.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

# fix_support skips (importorskip) without ai-edge-litert; the test modules import it, this file must not
# (a skip while a conftest is imported is an error), so the fixtures import it when they run.


@pytest.fixture(scope="session")
def google_models() -> Dict[str, bytes]:
    """Every reference model edited into the shape of Google's export (align_corners=True, int64 ArgMax)."""
    from fix_support import REFERENCE_MODELS, google_shaped

    if not REFERENCE_MODELS:
        if os.environ.get("CI"):
            pytest.fail("reference models not found (CI is set: ../shared/reference must be beside it)")
        pytest.skip("reference models not found")
    return {p.name: google_shaped(p.read_bytes()) for p in REFERENCE_MODELS}


@pytest.fixture(scope="session")
def sample_images():
    pytest.importorskip("skimage")
    pytest.importorskip("PIL")
    from deeplab_nnapi.images import sample_images as load

    return load()


@pytest.fixture()
def google_file(tmp_path, google_models) -> Path:
    path = tmp_path / "google.tflite"
    path.write_bytes(google_models["deeplabv3_mnv2_pascal_257_os16_quant.tflite"])
    return path
