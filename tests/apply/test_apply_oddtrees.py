"""Odd trees (issue: never a wrong answer on odd trees): symbolic links, hard links, permissions and
mutated files. The policy for links, the evidence behind every status, and a seeded fuzz of mutated
trees (tests/apply/oddtrees.py; tests/benchmarks/fuzz_odd_trees.py runs it at scale and prints figures)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import oddtrees as ot
import pytest
from apply_helpers import ModelsWorld, git, make_repo

#: the CI share of the fuzz (the benchmark script runs >= 1,000)
CI_TREES = 250
CI_SEED = 16


@pytest.fixture(scope="module")
def tf():
    return ot.tf_base()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return ot.models_base(ModelsWorld(tmp_path_factory.mktemp("odd-models-world")))


def _tree(tmp_path, base, repo: bool) -> Path:
    tree = tmp_path / "tree"
    files = {rel: data.decode() for rel, data in base.files.items()}
    if repo:
        return make_repo(tree, files)
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    return tree


def _cli(cli, base, tree, *extra):
    args = [a.replace("{tree}", str(tree)) for a in base.args]
    rc, out, err = cli("--manifest", base.manifest, *args, *extra)
    return rc, out, err


def _link_inside(tree: Path, rel: str) -> Path:
    """The issue's first case: the touched file is a link to a file elsewhere in the tree."""
    real = tree / "vendor" / Path(rel).name
    real.parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).rename(real)
    (tree / rel).symlink_to(os.path.relpath(real, (tree / rel).parent))
    return real


# -- the three cases of the issue, in every mode -------------------------------------------------------------
@pytest.mark.parametrize("repo", [False, True], ids=["plain", "git"])
def test_tf_delegate_linked_inside_the_tree_is_patched_through_the_link(cli, tmp_path, tf, repo):
    tree = _tree(tmp_path, tf, repo)
    real = _link_inside(tree, ot.NNAPI)
    before = real.read_bytes()
    if repo:
        git(tree, "add", "-A")
        git(tree, "commit", "-qm", "vendor layout: the delegate is a link")
    rc, out, err = _cli(cli, tf, tree, "--check", "--json")
    assert rc == 0 and json.loads(out)["trees"][0]["patches"][0]["state"] == "would-apply", err
    assert real.read_bytes() == before
    rc, out, err = _cli(cli, tf, tree, "--json")
    rep = json.loads(out)["trees"][0]
    assert rc == 0 and rep["patches"][0]["state"] == "applied", err
    assert rep["links"] == [{"path": ot.NNAPI, "links": [{"link": ot.NNAPI, "target": "../../../../vendor/"
                                                          "nnapi_delegate.cc"}],
                             "file": "vendor/nnapi_delegate.cc", "inside": True, "hard_links": 1}]
    assert rep["changed_files"] == ["vendor/nnapi_delegate.cc"]
    assert os.readlink(tree / ot.NNAPI) == "../../../../vendor/nnapi_delegate.cc"  # the link is kept
    assert ot._tf_result_ok(before, real.read_bytes(), tf.old, tf.new) is None
    rc, out, _ = _cli(cli, tf, tree, "--json")
    assert rc == 0 and json.loads(out)["trees"][0]["patches"][0]["state"] == "already-applied"
    rc, out, err = _cli(cli, tf, tree, "--reverse", "--json")
    assert rc == 0 and real.read_bytes() == before and (tree / ot.NNAPI).is_symlink(), err
    if repo:
        assert git(tree, "status", "--porcelain") == ""
        rc, out, err = _cli(cli, tf, tree, "--commit", "--json")
        assert rc == 0, err
        assert git(tree, "status", "--porcelain") == ""  # the commit holds the target's change ...
        assert git(tree, "show", "--name-only", "--format=", "HEAD").split() == ["vendor/nnapi_delegate.cc"]
        assert git(tree, "cat-file", "-t", f"HEAD:{ot.NNAPI}").strip() == "blob"  # ... the link is kept
        assert git(tree, "ls-tree", "HEAD", ot.NNAPI).startswith("120000")


@pytest.mark.parametrize("mode", [[], ["--check"], ["--reverse"], ["--commit"]], ids=["apply", "check",
                                                                                       "reverse", "commit"])
@pytest.mark.parametrize("target", ["tensorflow", "models"])
def test_a_link_leaving_the_tree_is_refused_in_every_mode(cli, tmp_path, tf, models, mode, target):
    base = tf if target == "tensorflow" else models
    rel = ot.NNAPI if target == "tensorflow" else "research/deeplab/model.py"
    tree = _tree(tmp_path, base, repo=True)
    outside = tmp_path / "elsewhere" / Path(rel).name
    outside.parent.mkdir()
    (tree / rel).rename(outside)
    (tree / rel).symlink_to(outside)
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "link out")
    before = ot.snap(tmp_path)
    rc, out, err = _cli(cli, base, tree, *mode)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert f"{rel}: the symlink {rel} -> {outside} leads outside the tree; refused" in err
    assert "fixed-upstream" not in err and ot.snap(tmp_path) == before
    # --follow-symlinks patches the file it points at (never with --commit: not in the repository)
    rc, out, err = _cli(cli, base, tree, *mode, "--follow-symlinks", "--json")
    if mode == ["--commit"]:
        assert rc == 2 and "--commit cannot record a file outside the repository" in err
        assert ot.snap(tmp_path) == before
    elif mode == ["--reverse"]:
        assert rc == 0 and ot.snap(tmp_path) == before  # nothing of ours to take out
    else:
        assert rc == 0, err
        rep = json.loads(out)["trees"][0]
        assert rep["links"][0]["inside"] is False and rep["links"][0]["file"] == str(outside)
        changed = outside.read_bytes() != before[os.path.relpath(outside, tmp_path)][1]
        assert changed == (mode == [])


@pytest.mark.parametrize("repo", [False, True], ids=["plain", "git"])
def test_models_file_linked_inside_the_tree_is_read_through_the_link(cli, tmp_path, models, repo):
    """The issue's third case: the link's own text was parsed (SyntaxError at line 1)."""
    rel = "research/deeplab/model.py"
    tree = _tree(tmp_path, models, repo)
    real = _link_inside(tree, rel)
    if repo:
        git(tree, "add", "-A")
        git(tree, "commit", "-qm", "link")
    text = real.read_bytes()
    rc, out, err = _cli(cli, models, tree, "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]
    assert [p["state"] for p in rep["patches"]] == ["applied"] * 3
    assert real.read_bytes() == models.rule.file(rel).apply(text).text and (tree / rel).is_symlink()
    assert "vendor/model.py" in rep["changed_files"] and rel not in rep["changed_files"]
    rc, _, err = _cli(cli, models, tree, "--reverse")
    assert rc == 0 and real.read_bytes() == text, err


@pytest.mark.parametrize("kind, words", [
    ("link-dangling", "dangling"), ("link-loop", "loops"), ("link-to-dir", "is a directory"),
])
@pytest.mark.parametrize("mode", ["apply", "check"])
def test_what_cannot_be_read_is_an_error_naming_it_never_a_status(tmp_path, tf, models, kind, words, mode):
    for base in (tf, models):
        c = ot.make_case(base, kind, False, mode, 1, tmp_path / f"{base.target}-{kind}")
        before = ot.snap(c.dir)
        run = ot.run_in_process(ot.cli_args(c))
        assert run.rc == 2 and run.out == "" and run.err.count("\n") == 1, run.err
        assert c.rel in run.err and words in run.err
        assert ot.snap(c.dir) == before


def test_two_touched_paths_that_are_one_file_are_refused(cli, tmp_path, models):
    tree = _tree(tmp_path, models, repo=False)
    (tree / "research/deeplab/export_model.py").unlink()
    (tree / "research/deeplab/export_model.py").symlink_to("model.py")
    rc, _, err = _cli(cli, models, tree, "--json")
    assert rc == 2 and "are the same file" in err and err.count("\n") == 1


# -- the fuzz ---------------------------------------------------------------------------------------------
def test_odd_trees(tmp_path, tf, models):
    """A seeded share of the odd-tree fuzz: every kind of mutation on both kinds of tree, git and plain,
    apply/--check/--commit; every third applied tree is run again and reversed. Not one wrong answer."""
    bases = {"tensorflow": tf, "models": models}
    verdicts = []
    with ot.scratch_space(tmp_path) as where:
        for i, (target, kind, repo, mode, seed) in enumerate(ot.plan(CI_TREES, CI_SEED, permissions=False)):
            c = ot.make_case(bases[target], kind, repo, mode, seed, where / f"c{i}")
            verdicts.append(ot.exercise(c, roundtrip=i % 3 == 0))
            shutil.rmtree(c.dir)
    wrong = [f"{v.case}: {v.wrong}" for v in verdicts if not v.ok]
    assert not wrong, "\n".join(wrong[:10])
    outcomes = Counter(v.outcome for v in verdicts)
    # the fuzz reached every kind of answer it should
    assert {"applied", "would-apply", "already-applied", "fixed-upstream", "refused-link", "refused-changed",
            "refused-conflict"} <= set(outcomes), outcomes


@pytest.fixture(scope="module")
def unprivileged():
    runner, why = ot.find_unprivileged()
    if runner is None:
        pytest.skip(why)
    return runner


@pytest.mark.parametrize("kind", ot.PERMISSION_KINDS)
def test_permissions_as_an_unprivileged_user(tf, models, unprivileged, kind):
    """Unreadable and unwritable files and folders, run as a user without root's powers (the test drops to
    one when it runs as root): a one-line refusal naming the file or folder, nothing changed, also with
    --check; never a traceback or a status."""
    rng = random.Random(kind)
    with ot.scratch_space(Path(tempfile.gettempdir())) as where:  # pytest's tmp_path is private to root
        shutil.copytree(models.manifest.parent, where / "patches")  # the user must read the models patches
        models = dataclasses.replace(models, manifest=where / "patches" / models.manifest.name)
        for i, (base, mode) in enumerate([(tf, "apply"), (models, "check")]):
            c = ot.make_case(base, kind, rng.random() < 0.5, mode, rng.randrange(1 << 30), where / f"c{i}")
            v = ot.exercise(c, unprivileged)
            assert v.ok and v.outcome == "refused-permission", (v.case, v.outcome, v.wrong)


def test_a_run_killed_while_patching_through_a_link_is_finished_by_the_next(tmp_path, tf):
    """Crash safety holds through a link: a run killed after each of its writes leaves a journal that the
    next run reads through the same link, finishing the target's change and leaving the link alone."""
    import subprocess
    import sys

    from apply_helpers import GIT_ENV

    script = Path(__file__).resolve().parents[2] / "tools" / "apply_patches.py"

    def run(tree, kill=None):
        env = {**os.environ, **GIT_ENV, "TMPDIR": str(tmp_path / "tmp")}  # what a killed run leaves, removed
        env.pop("DEEPLAB_NNAPI_TEST_KILL_AFTER_WRITES", None)
        if kill is not None:
            env["DEEPLAB_NNAPI_TEST_KILL_AFTER_WRITES"] = str(kill)
        args = [a.replace("{tree}", str(tree)) for a in tf.args]
        return subprocess.run([sys.executable, str(script), "--manifest", str(tf.manifest), *args],
                              capture_output=True, text=True, env=env, timeout=120)

    def make(name):
        tree = _tree(tmp_path / name, tf, repo=False)
        return tree, _link_inside(tree, ot.NNAPI)

    (tmp_path / "tmp").mkdir()
    ref, ref_real = make("ref")
    assert run(ref).returncode == 0
    k = 1
    while True:
        tree, real = make(f"k{k}")
        died = run(tree, kill=k)
        if died.returncode == 0:
            break
        assert died.returncode == 137, died.stderr
        again = run(tree)
        assert again.returncode == 0, (k, again.stderr)
        assert real.read_bytes() == ref_real.read_bytes(), k
        assert os.readlink(tree / ot.NNAPI) == os.readlink(ref / ot.NNAPI), k
        assert not (tree / ".deeplab-nnapi-journal").exists(), k
        k += 1
    assert k > 2  # the run wrote a journal and the file, and was killed after each


@pytest.mark.parametrize("text, problem", [
    ('int f() { return "}"[0] + \'}\'; }  // }\n/* { */\n', None),  # literals and comments do not count
    ('auto s = R"x(a { b)x";\nint f() { return 0; }\n', None),  # a raw string
    ("#if A\nvoid f() {\n#else\nvoid g() {\n#endif\n}\n", None),  # the first branch of a conditional
    ("namespace n {\nint f() { return 1'000; }\n}\n", None),  # a digit separator
    ("namespace n {\nvoid f() {\n", "is not closed (the file ends early)"),  # a file cut short
    ("void f() { g(); }}\n", "an unmatched '}'"),
    ('void f() { puts("a\n', "a string opened at line 1 is not closed"),
    ("/* a comment\n", "a comment opened at line 1 is not closed"),
])
def test_the_completeness_check_reads_cpp_as_written(text, problem):
    from deeplab_nnapi.patching.evidence import unbalanced

    got = unbalanced(text)
    assert (got is None) if problem is None else (got is not None and problem in got), got
