"""Every test runs in the same environment on every machine.

Nothing a test sees may come from the machine it runs on: the user's home directory and caches (a warm
checkpoint cache, a git identity, ``~/.gitconfig`` settings such as ``commit.gpgsign`` or
``core.autocrlf``), the locale, the time zone, or our own environment variables left set in a shell.
This hook runs before any test module is imported, so TensorFlow, git and our tools all start from it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List

import pytest
from reference_support import MODELS_DIR, PASCAL_513_OS8, REFERENCE_MODELS, SEED_PROFILE, google_shaped

#: Variables of ours that change what the tools do; a developer's shell may have them set.
#: (DEEPLAB_NNAPI_PATCHES is read by tests/apply on purpose and cleared per test there.)
_OURS = ("DEEPLAB_NNAPI_NATIVE_LOGS", "DEEPLAB_EXPORT_PYTHON", "DEEPLAB_NNAPI_MODELS_COMMIT", "DOCKER_HOST",
         "STORAGE_DRIVER", "BUILDAH_ISOLATION")


#: pip's cache of the user running the tests, found before $HOME is replaced (the wheel test installs with it,
#: so that a second run downloads nothing; what pip caches is keyed by content: it cannot change a result).
USER_PIP_CACHE: List[str] = []


def pytest_configure(config):
    cache = os.environ.get("PIP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "pip")
    USER_PIP_CACHE[:] = [cache]
    home = tempfile.mkdtemp(prefix="deeplab-nnapi-test-home-")
    os.environ.update({
        "HOME": home,
        "XDG_CACHE_HOME": os.path.join(home, ".cache"),
        "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "LANGUAGE": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Test Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Test Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    })
    for key in _OURS:
        os.environ.pop(key, None)
    if hasattr(__import__("time"), "tzset"):
        __import__("time").tzset()


# -- the reference material (../shared/reference), shared by every test folder -----------------------
def _missing(message: str) -> None:
    """Reference material absent: a skip on a developer's machine, a failure in CI (where ../shared is
    always beside the clone), so a misplaced reference directory cannot turn the suite silently green."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: ../shared/reference must be beside the clone)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def user_pip_cache() -> str:
    return USER_PIP_CACHE[0]


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
