"""Fixtures for the container tests."""

from __future__ import annotations

import pytest
from container_fakes import ARCHIVES, GOOD_EVENTS, FakeClient


@pytest.fixture
def fake_client():
    return FakeClient(GOOD_EVENTS, dict(ARCHIVES))
