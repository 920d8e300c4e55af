"""Opt-in: the patch set against real upstream text. Each test skips unless its variable names a tree:

MODELS_HISTORY_DIR  a tensorflow/models clone with the upstream history (bare is fine): the committed
                    models patches are exactly what the rule makes (generate_model_patches --check), and
                    every upstream commit since the 2019-05 quantization release that changed DeepLab's
                    export path is patched, found patched on a second run, and restored by --reverse
MODELS_FORK_DIRS    clones of tensorflow/models forks (os.pathsep-separated): their tips, the same way
TF_HISTORY_DIR      a TensorFlow clone with release tags (v2.0.0 ...): every v2.N.0 tag found, as a full
                    tree (version file) and as a version-less tree (--tf-version 2.x)
LITERT_DIR          a google-ai-edge/LiteRT clone: its HEAD, with --tf-version 2.14
TF_SOURCE_DIR, MODELS_SOURCE_DIR   checkouts: apply_patches --check only (nothing changes)

MODELS_HISTORY_DIR=~/src/models python -m pytest -m realsource tests/apply -q
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from apply_helpers import REAL_MANIFEST
from deeplab_nnapi.patching.rulefile import load_rule
from realsource_trees import (
    FINAL_UPSTREAM,
    LITERT_FILES,
    MODELS_FILES,
    QUANTIZATION_RELEASE,
    TF_FILES,
    commits_touching,
    git,
    git_dir,
    snapshot,
    unpack,
)

pytestmark = pytest.mark.realsource
OK_STATES = {"would-apply", "already-applied", "fixed-upstream", "not-needed", "not-present"}
RULE = load_rule(REAL_MANIFEST.parent / "models" / "rule.toml")


def _env_dir(name):
    value = os.environ.get(name)
    return git_dir(Path(value)) if value else None


def _params(name, make):
    gd = _env_dir(name)
    if gd is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"set {name}"))]
    return [pytest.param(v, id=i) for i, v in make(gd)]


def _status(tree: Path) -> str:
    if not (tree / ".git").exists():
        return ""
    return subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True).stdout


def _round_trip(cli, tree: Path, *target):
    """apply, a second run, reverse: returns the first report's tree entry."""
    before = snapshot(tree)
    rc, out, err = cli("--manifest", REAL_MANIFEST, *target, "--json")
    assert rc == 0, err
    first = json.loads(out)["trees"][0]
    rc, out, err = cli("--manifest", REAL_MANIFEST, *target, "--json")
    assert rc == 0, err
    assert {p["state"] for p in json.loads(out)["trees"][0]["patches"]} <= {
        "already-applied",
        "not-needed",
        "not-present",
        "fixed-upstream",
    }, out
    patched = snapshot(tree)
    rc, _, err = cli("--manifest", REAL_MANIFEST, *target, "--reverse")
    assert rc == 0, err
    assert snapshot(tree) == before
    return first, patched


def _models_done(files: dict):
    for fr in RULE.files:
        if fr.path in files:
            left = [s.describe() for s in fr.scan(files[fr.path]) if s.state != "done"]
            assert not left, f"{fr.path}: {left}"


# -- tensorflow/models -------------------------------------------------------------------------------
def _upstream_commits(gd):
    for sha, date, _subject in commits_touching(gd, FINAL_UPSTREAM, MODELS_FILES, since=QUANTIZATION_RELEASE):
        yield f"{sha[:8]}-{date}", sha


@pytest.mark.parametrize("commit", _params("MODELS_HISTORY_DIR", _upstream_commits))
@pytest.mark.parametrize("repo", [True, False], ids=["git", "plain"])
def test_every_upstream_state_since_the_quantization_release(cli, tmp_path, commit, repo):
    gd = _env_dir("MODELS_HISTORY_DIR")
    tree = unpack(gd, commit, MODELS_FILES, tmp_path / "m", repo=repo)
    first, patched = _round_trip(cli, tree, "--models-dir", tree)
    assert all(p["strategy"] in ("clean", "not-needed") for p in first["patches"]), first["patches"]
    _models_done(patched)


@pytest.mark.skipif(not os.environ.get("MODELS_HISTORY_DIR"), reason="set MODELS_HISTORY_DIR")
def test_committed_models_patches_are_what_the_rule_makes_over_the_real_history():
    script = Path(__file__).resolve().parents[2] / "tools" / "generate_model_patches.py"
    res = subprocess.run(
        [sys.executable, str(script), "--git-dir", os.environ["MODELS_HISTORY_DIR"], "--check", "--json"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["differs"] == [] and all(v["ok"] for v in rep["verified"])


def _fork_params():
    forks = [Path(p) for p in os.environ.get("MODELS_FORK_DIRS", "").split(os.pathsep) if p]
    if not forks:
        return [pytest.param(None, marks=pytest.mark.skip(reason="set MODELS_FORK_DIRS"))]
    return [pytest.param(p, id="/".join(p.parts[-2:])) for p in forks]


@pytest.mark.parametrize("fork", _fork_params())
def test_fork_tips(cli, tmp_path, fork):
    gd = git_dir(fork)
    tree = unpack(gd, "HEAD", MODELS_FILES, tmp_path / "fork", repo=False)
    first, patched = _round_trip(cli, tree, "--models-dir", tree)
    _models_done(patched)
    print(f"{fork}: " + ", ".join(f"{p['path']}={p['strategy']}" for p in first["patches"]))


# -- TensorFlow and LiteRT -----------------------------------------------------------------------------
def _release_tags(gd):
    tags = git(gd, "tag", "--list", "v2.*.0").split()
    for tag in sorted(
        (t for t in tags if re.fullmatch(r"v2\.\d+\.0", t)), key=lambda t: int(t.split(".")[1])
    ):
        yield tag, tag


@pytest.mark.parametrize("tag", _params("TF_HISTORY_DIR", _release_tags))
def test_tensorflow_release_tags(cli, tmp_path, tag):
    gd = _env_dir("TF_HISTORY_DIR")
    version = tag[1:]
    full = unpack(gd, tag, TF_FILES, tmp_path / "full")
    first, _ = _round_trip(cli, full, "--tf-version", version, "--tf-dir", full)
    assert first["version"] == version and first["patches"][0]["strategy"] == "clean"
    bare = unpack(gd, tag, TF_FILES[:1], tmp_path / "tflite-only", repo=False)
    second, _ = _round_trip(cli, bare, "--tf-version", "2.x", "--tf-dir", bare)
    assert second["layout"] == "tflite-only" and second["shape"] == first["shape"]
    print(f"{tag}: shape {first['shape']} ({first['patches'][0]['name']})")


@pytest.mark.skipif(
    not os.environ.get("LITERT_DIR"), reason="set LITERT_DIR to a google-ai-edge/LiteRT clone"
)
def test_litert_head(cli, tmp_path):
    tree = unpack(_env_dir("LITERT_DIR"), "HEAD", LITERT_FILES, tmp_path / "litert", repo=False)
    first, _ = _round_trip(cli, tree, "--tf-version", "2.14", "--tf-dir", tree)
    assert first["layout"] == "litert" and first["patches"][0]["state"] == "applied"


# -- checkouts, --check only -----------------------------------------------------------------------------
def _check(cli, *args):
    rc, out, err = cli("--manifest", REAL_MANIFEST, *args, "--check", "--json", "--allow-dirty")
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
        f"{tree}: {t['layout']} {t['version']}: "
        + ", ".join(f"{p['name']}={p['state']}" for p in t["patches"])
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
