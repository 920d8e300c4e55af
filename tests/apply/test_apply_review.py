"""Regressions found by review: bad input in a second tree, non-models trees, empty manifests,
unreadable version files. Every case must be exit 2 with exactly one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from apply_helpers import (
    REAL_MANIFEST,
    git,
    make_repo,
    preimage_from_patch,
    snapshot,
    version_h,
)

PATCHES = REAL_MANIFEST.parent


def _tf_tree(path: Path) -> Path:
    patch = PATCHES / "tensorflow/shape-c/0001-lite-nnapi-delegate-large-average-pool-windows.patch"
    files = preimage_from_patch(patch.read_bytes())
    files["tensorflow/core/public/version.h"] = version_h(2, 4, 1)
    return make_repo(path, files)


def _models_tree(path: Path) -> Path:
    from deeplab_like import files

    return make_repo(path, files("final"))


def test_dirty_second_tree_is_one_line_and_no_progress(cli, tmp_path):
    tf, models = _tf_tree(tmp_path / "tf"), _models_tree(tmp_path / "models")
    with open(models / "research/deeplab/model.py", "a") as fh:
        fh.write("# local edit\n")
    before_tf, before_m = snapshot(tf), snapshot(models)
    rc, out, err = cli(
        "--manifest", REAL_MANIFEST, "--tf-version", "2.4", "--tf-dir", tf, "--models-dir", models
    )
    assert rc == 2 and out == ""
    # no "[tensorflow 1/1] ...: applied" progress line before the refusal: that would read as if
    # the TensorFlow tree had been changed
    assert err.count("\n") == 1 and "--allow-dirty" in err and "applied" not in err, err
    assert snapshot(tf) == before_tf and snapshot(models) == before_m


def test_models_dir_that_is_not_a_models_tree_is_bad_input(cli, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    repo = make_repo(tmp_path / "repo", {"README.md": "not tensorflow/models\n"})
    for tree in (plain, repo):
        for extra in ((), ("--json",), ("--check",)):
            rc, out, err = cli("--manifest", REAL_MANIFEST, "--models-dir", tree, *extra)
            assert rc == 2 and out == "", (tree, extra, err)
            assert err.count("\n") == 1 and "tensorflow/models tree" in err, err


def test_models_call_the_rule_cannot_decide_is_a_conflict(cli, tmp_path):
    """A fork whose text no patch fits is patched by the rule, but a call whose value the rule cannot read
    (align_corners=some_flag) is a conflict naming file, line and call; nothing is written."""
    models = _models_tree(tmp_path / "models")
    p = models / "research/deeplab/core/utils.py"
    p.write_text(p.read_text().replace("align_corners=True", "align_corners=FLAGS.align"))
    git(models, "commit", "-qam", "drift")
    before = snapshot(models)
    rc, _, err = cli("--manifest", REAL_MANIFEST, "--models-dir", models)
    assert (
        rc == 1
        and "research/deeplab/core/utils.py: line 7: tf.image.resize_bilinear(align_corners=FLAGS.align)"
        in err
        and "cannot decide" in err
    ), err
    assert snapshot(models) == before


def test_empty_manifest_says_so(cli, tmp_path):
    for text in ("", "# only a comment\n"):
        man = tmp_path / "manifest.toml"
        man.write_text(text)
        rc, out, err = cli("--manifest", man, "--list")
        assert rc == 2 and out == ""
        assert err.count("\n") == 1 and "manifest is empty" in err, err


def test_unreadable_version_file_is_one_line(cli, tmp_path, monkeypatch):
    tf = _tf_tree(tmp_path / "tf")
    real = Path.read_text

    def deny(self, *a, **k):
        if self.name == "version.h":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", deny)
    rc, out, err = cli("--manifest", REAL_MANIFEST, "--tf-version", "2.x", "--tf-dir", tf)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "version.h" in err and "Permission denied" in err, err


def _nested_tf_tree(tmp_path: Path) -> tuple:
    """A TensorFlow tree vendored in a monorepo's third_party/ (not a repository of its own)."""
    patch = PATCHES / "tensorflow/shape-c/0001-lite-nnapi-delegate-large-average-pool-windows.patch"
    files = {f"third_party/tf/{k}": v for k, v in preimage_from_patch(patch.read_bytes()).items()}
    files["third_party/tf/tensorflow/core/public/version.h"] = version_h(2, 4, 1)
    mono = make_repo(tmp_path / "mono", files)
    return mono, mono / "third_party" / "tf"


def test_tree_inside_another_repository_is_refused_when_dirty(cli, tmp_path):
    mono, tf = _nested_tf_tree(tmp_path)
    args = ("--manifest", REAL_MANIFEST, "--tf-version", "2.4", "--tf-dir", tf)
    rc, _, err = cli(*args)
    assert rc == 0, err
    # idempotent: our own change is not "local edits"
    rc, out, err = cli(*args, "--json")
    assert rc == 0, err
    assert json.loads(out)["trees"][0]["patches"][0]["state"] == "already-applied"
    rc, _, err = cli(*args, "--reverse")
    assert rc == 0, err
    assert git(mono, "status", "--porcelain") == ""
    # a local edit in the touched file, seen through the enclosing repository
    cc = tf / "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"
    cc.write_bytes(cc.read_bytes() + b"// local edit\n")
    before = snapshot(mono)
    rc, out, err = cli(*args)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "--allow-dirty" in err, err
    listed = err.split("(")[1]  # the files, named relative to the --tf-dir tree
    assert listed.startswith("tensorflow/lite/delegates/nnapi/nnapi_delegate.cc)"), err
    assert snapshot(mono) == before
    rc, _, err = cli(*args, "--allow-dirty")
    assert rc == 0, err
    assert cc.read_bytes().endswith(b"// local edit\n")


def test_commit_in_a_tree_inside_another_repository_says_why(cli, tmp_path):
    mono, tf = _nested_tf_tree(tmp_path)
    rc, _, err = cli("--manifest", REAL_MANIFEST, "--tf-version", "2.4", "--tf-dir", tf, "--commit")
    assert rc == 2 and err.count("\n") == 1
    assert f"inside the git repository {mono.resolve()}" in err and "not at its top" in err, err
