"""Every shell block of README.md and docs/*.md runs, in a sandbox with the files the docs name, and exits
as its marker says (0 unless ``exit N``). Blocks marked as needing what the tests do not have (the network,
Docker, a phone, a real source tree, an extra that is not installed) are skipped with the reason; the run
ends with a count of both (conftest.py). The marking scheme: docblocks.py and docs/testing.md."""

from __future__ import annotations

import subprocess

import pytest
from docblocks import OUTCOMES, MarkerError, runnable_text, shell_blocks
from docsandbox import Sandbox

try:
    BLOCKS = shell_blocks()
except MarkerError:  # reported by test_docs_pages.py::test_docs_markers_are_valid
    BLOCKS = []


def _tail(text: str, n: int = 40) -> str:
    lines = text.splitlines()
    return "\n".join((["..."] if len(lines) > n else []) + lines[-n:])


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_docs_block(block, request, tmp_path, docs_shims, docs_google_bytes):
    reason = block.skip_reason()
    if reason:
        OUTCOMES[block.id] = reason
        pytest.skip(reason)
    frozen = request.getfixturevalue("docs_frozen_graph") if "frozen.pb" in block.text else None
    box = Sandbox(tmp_path / "sandbox", docs_google_bytes, frozen)
    box.prepare(block.text)
    try:
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", runnable_text(block.text)],
                              cwd=box.work, env=box.env(docs_shims), capture_output=True, text=True,
                              timeout=block.timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.id}: still running after {block.timeout} s (raise it with `timeout N`)")
    OUTCOMES[block.id] = "ran"
    assert proc.returncode == block.exit, (
        f"{block.id}: exit {proc.returncode}, the docs expect {block.exit}\n--- block\n{block.text}"
        f"--- stdout\n{_tail(proc.stdout)}\n--- stderr\n{_tail(proc.stderr)}")
