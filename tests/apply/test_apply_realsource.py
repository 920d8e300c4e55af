"""Opt-in: ``apply_patches --check`` against real checkouts.

    TF_SOURCE_DIR=~/src/tensorflow [TF_SOURCE_VERSION=2.4.1] MODELS_SOURCE_DIR=~/src/models \\
        python -m pytest -m realsource tests/apply -q

Each test is skipped when its variable is unset. --check changes nothing; the tests also verify that
``git status`` of the checkout is the same afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.realsource

OK_STATES = {"would-apply", "already-applied", "fixed-upstream"}


def _status(tree: Path) -> str:
    if not (tree / ".git").exists():
        return ""
    return subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True).stdout


def _check(cli, *args):
    rc, out, err = cli(*args, "--check", "--json", "--allow-dirty")
    assert rc == 0, err
    rep = json.loads(out)
    for tree in rep["trees"]:
        for p in tree["patches"]:
            assert p["state"] in OK_STATES, f"{p['name']}: {p['state']} {p['message']}"
    return rep


@pytest.mark.skipif(not os.environ.get("TF_SOURCE_DIR"), reason="set TF_SOURCE_DIR to a TensorFlow checkout")
def test_check_real_tensorflow_tree(cli):
    tree = Path(os.environ["TF_SOURCE_DIR"]).expanduser()
    before = _status(tree)
    rep = _check(cli, "--tf-version", os.environ.get("TF_SOURCE_VERSION", "2.x"), "--tf-dir", tree)
    t = rep["trees"][0]
    print(
        f"{tree}: TensorFlow {t['version']}: " + ", ".join(f"{p['name']}={p['state']}" for p in t["patches"])
    )
    assert _status(tree) == before


@pytest.mark.skipif(
    not os.environ.get("MODELS_SOURCE_DIR"), reason="set MODELS_SOURCE_DIR to a tensorflow/models checkout"
)
def test_check_real_models_tree(cli):
    tree = Path(os.environ["MODELS_SOURCE_DIR"]).expanduser()
    before = _status(tree)
    rep = _check(cli, "--models-dir", tree)
    t = rep["trees"][0]
    print(f"{tree}: " + ", ".join(f"{p['name']}={p['state']}" for p in t["patches"]))
    assert _status(tree) == before
