"""The models patch set made by the generator from a history (here a synthetic DeepLab history the tests
write: legacy -> helper -> final), and the engine applying it: the variant made for a tree's exact text,
offsets for forks with edits elsewhere, the rule for forks whose lines changed, half-patched trees, reverse,
--commit with rule-made changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from apply_helpers import GIT_ENV, ModelsWorld, git, snapshot, write_files
from deeplab_like import EXPORT, MODEL, UTILS
from deeplab_nnapi.patching.generate import generate
from deeplab_nnapi.patching.manifest import load_manifest
from deeplab_nnapi.patching.patchset import manifest_text, readme_text

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "generate_model_patches.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return ModelsWorld(tmp_path_factory.mktemp("gen"))


def _bytes(tree):
    return {k: v[0] for k, v in snapshot(tree)["files"].items()}


def _apply(cli, world, tree, *extra):
    rc, out, err = cli("--manifest", world.manifest, "--models-dir", tree, "--json", *extra)
    assert out, err
    return rc, {p["path"] or p["name"]: p for p in json.loads(out)["trees"][0]["patches"]}


def test_one_patch_per_distinct_text_each_verified(world):
    gen = world.generated
    assert [s.commit for s in gen.states] == [world.commits[s] for s in ("final", "helper", "legacy")]
    assert all(v.ok for v in gen.verifications), [v.detail for v in gen.verifications]
    by_file = {}
    for v in gen.variants:
        by_file.setdefault(v.file.path, []).append(v)
    # model.py changed in each state; export_model.py only needs a patch once it resizes probabilities;
    # core/utils.py is absent from the legacy layout and identical in helper and final
    assert len(by_file[MODEL]) == 3 and len(by_file[EXPORT]) == 1 and len(by_file[UTILS]) == 1
    legacy = next(v for v in gen.verifications if v.state.commit == world.commits["legacy"])
    assert legacy.unchanged == [EXPORT] and len(legacy.patches) == 1
    man = load_manifest(world.manifest)
    assert man.rule("models") is not None
    assert {p.name for p in man.for_target("models")} == {v.name for v in gen.variants}


def test_generation_is_deterministic(world, tmp_path):
    again = generate(world.history, world.rule, ref="HEAD")
    assert [v.patch for v in again.variants] == [v.patch for v in world.generated.variants]
    assert manifest_text(again, "rule.toml") == manifest_text(world.generated, "rule.toml")
    assert readme_text(again) == readme_text(world.generated)


def test_check_mode_proves_the_committed_set_current_and_finds_an_edit(world):
    def check():
        return subprocess.run([sys.executable, str(SCRIPT), "--git-dir", str(world.history), "--ref", "HEAD",
                               "--rule", str(world.patches_dir / "models" / "rule.toml"),
                               "--patches-dir", str(world.patches_dir), "--check", "--json"],
                              capture_output=True, text=True, env={**__import__("os").environ, **GIT_ENV})

    ok = check()
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["differs"] == []
    victim = next((world.patches_dir / "models" / "model").glob("*.patch"))
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved.replace(b"deeplab:", b"deeplab (edited):", 1))
        bad = check()
        assert bad.returncode == 1 and json.loads(bad.stdout)["differs"] == [f"model/{victim.name}"]
    finally:
        victim.write_bytes(saved)


@pytest.mark.parametrize("state", ["legacy", "helper", "final"])
def test_each_upstream_state_gets_the_patches_made_for_its_text(cli, world, state):
    tree = world.tree(state, f"exact-{state}")
    before = _bytes(tree)
    rc, rep = _apply(cli, world, tree)
    assert rc == 0
    for path, p in rep.items():
        assert (p["strategy"], p["state"]) in {("clean", "applied"), ("not-needed", "not-needed"),
                                               ("not-present", "not-present")}, (path, p)
    rc, again = _apply(cli, world, tree)
    assert rc == 0
    assert {p["state"] for p in again.values()} <= {"already-applied", "not-needed", "not-present"}
    rc, _ = _apply(cli, world, tree, "--reverse")
    assert rc == 0 and _bytes(tree) == before


def test_fork_with_an_edit_elsewhere_takes_the_patch_with_an_offset(cli, world):
    tree = world.tree("final", "offset", extra="\n\n\ndef local_helper():\n  return 42\n")
    rc, rep = _apply(cli, world, tree)
    assert rc == 0 and rep[MODEL]["strategy"] == "clean"


def test_compat_v1_fork_is_patched_by_the_rule_and_reversed(cli, world):
    tree = world.tree("compat", "compat")
    before = _bytes(tree)
    rc, rep = _apply(cli, world, tree)
    assert rc == 0 and {p["strategy"] for p in rep.values()} == {"rule"}
    assert len(rep[MODEL]["sites"]) == 5 and "no patch fits" in rep[MODEL]["message"]
    want = "tf.compat.v1.image.resize_bilinear(images, size, align_corners=False)"
    assert want in (tree / UTILS).read_text()
    rc, again = _apply(cli, world, tree)
    assert {p["state"] for p in again.values()} == {"already-applied"}
    rc, _ = _apply(cli, world, tree, "--reverse")
    assert rc == 0 and _bytes(tree) == before


def test_half_patched_tree_is_not_taken_for_patched(cli, world):
    """A tree where only some sites were changed (a crash of another tool, a hand edit): the missing ones
    are done, never reported as already applied."""
    tree = world.tree("final", "half")
    text = (tree / MODEL).read_text().replace("argmax_results = tf.argmax(logits, 3)",
                                              "argmax_results = tf.argmax(logits, 3, output_type=tf.int32)")
    write_files(tree, {MODEL: text})
    git(tree, "commit", "-qam", "half")
    rc, rep = _apply(cli, world, tree, "--check")
    assert rc == 0 and rep[MODEL]["state"] == "would-apply"
    rc, rep = _apply(cli, world, tree)
    # the pre-image is in this repository's history, so a 3-way merge finishes it; without history the rule
    assert rc == 0 and rep[MODEL]["strategy"] in ("3way", "rule") and len(rep[MODEL]["sites"]) == 4
    assert "output_type=tf.int32" in (tree / MODEL).read_text()
    from deeplab_nnapi.patching.status import tree_status

    assert tree_status(tree, "models", manifest=load_manifest(world.manifest)).state == "applied"


def test_commit_mode_makes_a_commit_for_a_rule_made_change(cli, world):
    tree = world.tree("compat", "compat-commit")
    rc, rep = _apply(cli, world, tree, "--commit")
    assert rc == 0 and all(p["commit"] for p in rep.values())
    log = git(tree, "log", "--format=%s|%an", "-3")
    assert log.splitlines() == [
        "deeplab: align_corners=False for the exported SemanticProbabilities|deeplab-nnapi",
        "deeplab: align_corners=False resizes and int32 argmax in model.py|deeplab-nnapi",
        "deeplab: align_corners=False in core/utils.resize_bilinear|deeplab-nnapi",
    ]
    assert "by the rule, no patch fitted this text" in git(tree, "log", "-1", "--format=%b")
    assert git(tree, "status", "--porcelain") == ""


def test_an_earlier_run_of_ours_is_not_a_local_change(cli, world):
    tree = world.tree("compat", "ours")
    assert _apply(cli, world, tree)[0] == 0
    # the files now differ from HEAD by exactly our change: a new run is not refused as dirty
    rc, rep = _apply(cli, world, tree)
    assert rc == 0 and {p["state"] for p in rep.values()} == {"already-applied"}
