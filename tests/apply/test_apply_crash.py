"""Crash safety: a run killed after its k-th write, for every k, leaves a state the next run recognises
and repairs (finishes it, or rolls it back when the next run goes the other way) - never a half-patched
tree that reads as patched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apply_helpers import GIT_ENV, NNAPI, ModelsWorld, TFWorld, git, snapshot

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "apply_patches.py"
KILL = "DEEPLAB_NNAPI_TEST_KILL_AFTER_WRITES"


def _run(*args, kill=None):
    env = {**os.environ, **GIT_ENV}
    env.pop(KILL, None)
    if kill is not None:
        env[KILL] = str(kill)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


def _files(tree: Path) -> dict:
    return {k: v for k, v in snapshot(tree)["files"].items() if not k.startswith(".deeplab-nnapi-journal")}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return ModelsWorld(tmp_path_factory.mktemp("models-world"))


def _kill_points(make, args):
    """Run once to completion to learn the final state, then die after write k = 1, 2, ... until a run
    gets through without dying; return [(k, tree after the kill)] and the uninterrupted result."""
    ref = make("ref")
    done = _run(*args(ref))
    assert done.returncode == 0, done.stderr
    out, k = [], 1
    while True:
        tree = make(f"k{k}")
        res = _run(*args(tree), kill=k)
        if res.returncode == 0:
            assert k > 2, "the run writes at least a journal and a file"
            return out, ref
        assert res.returncode == 137, res.stderr
        out.append((k, tree))
        k += 1


@pytest.mark.parametrize("repo", [True, False], ids=["git", "plain"])
def test_killed_apply_is_finished_by_the_next_run(world, repo):
    def make(name):
        return world.tree("final", f"apply-{repo}-{name}", repo=repo)

    def args(tree):
        return ["--manifest", world.manifest, "--models-dir", tree, "--json"]

    points, ref = _kill_points(make, args)
    assert len(points) >= 4  # journal parts, three files, journal removal
    for k, tree in points:
        # the half-written tree is never taken for a patched one
        check = _run("--manifest", world.manifest, "--models-dir", tree, "--check")
        journal = tree / (".git/deeplab-nnapi-journal" if repo else ".deeplab-nnapi-journal")
        if not journal.exists():  # died after its last write, removing the journal: the tree is complete
            assert _files(tree) == _files(ref) and check.returncode == 0, (k, check.stderr)
        elif "not begun to write" in check.stderr:  # died while writing its journal: the tree is untouched
            assert check.returncode == 0 and "3 would-apply" in check.stderr, (k, check.stderr)
        else:
            assert check.returncode == 1 and "interrupted apply run" in check.stderr, (k, check.stderr)
        res = _run(*args(tree))
        assert res.returncode == 0, (k, res.stderr)
        rep = json.loads(res.stdout)["trees"][0]
        assert (
            rep["recovered"] is None or "finished it" in rep["recovered"] or "not begun" in rep["recovered"]
        )
        assert _files(tree) == _files(ref), k
        assert (
            not (tree / ".deeplab-nnapi-journal").exists()
            and not (tree / ".git" / "deeplab-nnapi-journal").exists()
        )
        again = json.loads(_run(*args(tree)).stdout)["trees"][0]
        assert {p["state"] for p in again["patches"]} == {"already-applied"}, k
        if repo:
            assert git(tree, "status", "--porcelain") == git(ref, "status", "--porcelain")


def test_killed_apply_is_rolled_back_by_a_reverse_run(world):
    def make(name):
        return world.tree("final", f"rb-{name}")

    def args(tree):
        return ["--manifest", world.manifest, "--models-dir", tree]

    points, _ = _kill_points(make, args)
    pristine = world.tree("final", "rb-pristine")
    for k, tree in points:
        res = _run("--manifest", world.manifest, "--models-dir", tree, "--reverse", "--json")
        assert res.returncode == 0, (k, res.stderr)
        assert _files(tree) == _files(pristine), k
        rec = json.loads(res.stdout)["trees"][0]["recovered"]
        assert rec is None or "rolled it back" in rec or "not begun" in rec, (k, rec)


def test_killed_commit_run_is_finished_with_its_commits(world):
    def make(name):
        return world.tree("final", f"commit-{name}")

    def args(tree):
        return ["--manifest", world.manifest, "--models-dir", tree, "--commit"]

    fmt = "--format=%s%n%an <%ae> %ad"
    points, ref = _kill_points(make, args)
    want_log = git(ref, "log", fmt, "--date=raw", "HEAD~3..HEAD")
    for k, tree in points:
        base = git(tree, "rev-list", "--max-parents=0", "HEAD").strip()
        res = _run(*args(tree))
        assert res.returncode == 0, (k, res.stderr)
        assert _files(tree) == _files(ref), k
        assert git(tree, "status", "--porcelain") == "", k
        assert git(tree, "log", fmt, "--date=raw", f"{base}..HEAD") == want_log, k


def test_killed_tensorflow_run_in_a_plain_directory(tmp_path):
    w = TFWorld(tmp_path)

    def make(name):
        dest = tmp_path / f"plain-{name}"
        dest.mkdir()
        subprocess.run(
            [
                "git",
                "--git-dir",
                str(w.src / ".git"),
                "--work-tree",
                str(dest),
                "checkout",
                "-f",
                "HEAD",
                "--",
                ".",
            ],
            check=True,
            env={**os.environ, **GIT_ENV},
        )
        return dest

    def args(tree):
        return ["--manifest", w.manifest, "--tf-version", "2.4", "--tf-dir", tree]

    points, ref = _kill_points(make, args)
    for k, tree in points:
        assert _run(*args(tree)).returncode == 0, k
        assert _files(tree) == _files(ref), k
        assert (tree / NNAPI).read_bytes() == (ref / NNAPI).read_bytes()


def test_journal_of_a_run_that_never_wrote_is_discarded(world):
    tree = world.tree("final", "unstarted")
    res = _run(
        "--manifest", world.manifest, "--models-dir", tree, kill=1
    )  # dies after its first journal write
    assert res.returncode == 137
    before = _files(tree)
    pristine = world.tree("final", "unstarted-pristine")
    assert before == _files(pristine)  # nothing in the work tree changed
    res = _run("--manifest", world.manifest, "--models-dir", tree, "--json")
    assert res.returncode == 0 and "not begun to write" in json.loads(res.stdout)["trees"][0]["recovered"]


def test_a_file_edited_after_the_crash_stops_the_repair(world):
    k = 0
    while True:  # the first kill point after which the journal is complete (the run is committed)
        k += 1
        tree = world.tree("final", f"edited-{k}")
        assert _run("--manifest", world.manifest, "--models-dir", tree, kill=k).returncode == 137
        if (tree / ".git/deeplab-nnapi-journal/state.json").exists():
            break
    target = tree / "research/deeplab/export_model.py"
    target.write_text(target.read_text() + "# someone's edit\n")
    res = _run("--manifest", world.manifest, "--models-dir", tree)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "changed since an interrupted apply run" in res.stderr and "deeplab-nnapi-journal" in res.stderr
