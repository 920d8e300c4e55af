"""docker/fetch_checkpoints.py: bad input is refused before any download."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from deeplab_nnapi import REPO_ROOT

SCRIPT = REPO_ROOT / "docker" / "fetch_checkpoints.py"


@pytest.mark.parametrize("pin, fragment", [
    ("no_such_checkpoint=" + "0" * 64, "unknown checkpoint 'no_such_checkpoint' (known: "),
    ("pascal_train_aug_8bit=not-a-sha", "'not-a-sha' is not a sha256"),
])
def test_bad_pins_are_exit_2_one_line_and_download_nothing(tmp_path, pin, fragment):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "tools"), http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dest", str(tmp_path / "ck"), pin],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fetch_checkpoints: error: ") and fragment in lines[0]
    assert not (tmp_path / "ck").exists()
