"""Fixtures for the pictures tests: the sample photos (the reference models and the Google-shaped fixture
come from tests/conftest.py)."""

from __future__ import annotations

import pytest


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
