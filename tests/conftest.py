"""Every test runs in the same environment on every machine.

Nothing a test sees may come from the machine it runs on: the user's home directory and caches (a warm
checkpoint cache, a git identity, ``~/.gitconfig`` settings such as ``commit.gpgsign`` or
``core.autocrlf``), the locale, the time zone, or our own environment variables left set in a shell.
This hook runs before any test module is imported, so TensorFlow, git and our tools all start from it.
"""

from __future__ import annotations

import os
import tempfile

#: Variables of ours that change what the tools do; a developer's shell may have them set.
#: (DEEPLAB_NNAPI_PATCHES is read by tests/apply on purpose and cleared per test there.)
_OURS = ("DEEPLAB_NNAPI_NATIVE_LOGS", "DEEPLAB_EXPORT_PYTHON", "DOCKER_HOST")


def pytest_configure(config):
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
