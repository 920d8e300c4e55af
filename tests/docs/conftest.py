"""Fixtures for the docs tests: the sandbox's shared parts (made once per session) and a closing line that
says how many documentation blocks ran and why the others were skipped."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from docblocks import OUTCOMES  # noqa: E402
from docsandbox import google_bytes, make_shims  # noqa: E402


@pytest.fixture(scope="session")
def docs_shims(tmp_path_factory) -> Path:
    return make_shims(tmp_path_factory.mktemp("docs-bin"))


@pytest.fixture(scope="session")
def docs_google_bytes(pascal_513_os8) -> bytes:
    return google_bytes()


@pytest.fixture(scope="session")
def docs_frozen_graph(tmp_path_factory) -> Path:
    """A DeepLab-shaped frozen graph (513x513 input, 21 classes, the patched shape) for ``--from-graph``."""
    pytest.importorskip("tensorflow")
    sys.path.insert(0, str(HERE.parent / "export"))
    from export_graphs import GraphSpec, build_frozen_graph

    path = tmp_path_factory.mktemp("docs-graph") / "frozen.pb"
    path.write_bytes(build_frozen_graph(GraphSpec(size=513, num_classes=21)))
    return path


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES:
        return
    ran = sum(1 for v in OUTCOMES.values() if v == "ran")
    why = Counter(v for v in OUTCOMES.values() if v != "ran")
    terminalreporter.write_sep("-", "documentation blocks")
    terminalreporter.write_line(f"docs: {ran} shell blocks ran, {sum(why.values())} skipped")
    for reason, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0])):
        terminalreporter.write_line(f"  {n} x {reason}")
