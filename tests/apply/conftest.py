"""Fixtures for the apply_patches tests (helpers live in apply_helpers.py)."""

from __future__ import annotations

import pytest
from apply_helpers import GIT_ENV, TFWorld


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch):
    """A known identity and no user/system git config, for every test."""
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DEEPLAB_NNAPI_PATCHES", raising=False)


@pytest.fixture
def cli(capsys):
    """Run the apply_patches CLI in-process: returns (exit code, stdout, stderr)."""
    from deeplab_nnapi.cli.apply_patches import main

    def _run(*args) -> tuple:
        rc = main([str(a) for a in args])
        cap = capsys.readouterr()
        return rc, cap.out, cap.err

    return _run


@pytest.fixture
def tfworld(tmp_path) -> TFWorld:
    return TFWorld(tmp_path)
