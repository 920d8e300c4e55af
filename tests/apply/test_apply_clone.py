"""--clone-tf / --clone-models from a local bare repository (file:// URL): no network."""

from __future__ import annotations

import json

from apply_helpers import NNAPI, RELAXED, git


def bare_upstream(tfworld):
    bare = tfworld.tmp / "mirror.git"
    git(tfworld.tmp, "clone", "-q", "--bare", str(tfworld.src), str(bare))
    git(bare, "tag", "v2.4.1", "main")
    return bare


def test_clone_tf_tag_shallow_then_apply(cli, tfworld):
    bare = bare_upstream(tfworld)
    # a second commit after the tag: the clone must be at the tag, not at main
    work = tfworld.tmp / "work"
    git(tfworld.tmp, "clone", "-q", str(bare), str(work))
    (work / "README").write_text("after the tag\n")
    git(work, "commit", "-qam", "after tag")
    git(work, "push", "-q", "origin", "main")
    dest = tfworld.tmp / "src" / "tensorflow"
    rc, out, err = cli(
        "--manifest",
        tfworld.manifest,
        "--clone-tf",
        "v2.4.1",
        "--tf-url",
        f"file://{bare}",
        "--tf-version",
        "2.4.1",
        "--tf-dir",
        dest,
    )
    assert rc == 0, err
    assert "cloning file://" in err and "cloned v2.4.1" in err
    assert RELAXED in (dest / NNAPI).read_text()
    assert (dest / "README").read_text() == "synthetic tree\n"
    assert git(dest, "rev-parse", "--is-shallow-repository").strip() == "true"
    assert git(dest, "rev-list", "--count", "HEAD").strip() == "1"
    # no leftovers beside the clone
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tensorflow"]


def test_clone_models_by_full_commit(cli, tfworld, tmp_path):
    bare = bare_upstream(tfworld)
    sha = git(bare, "rev-parse", "main").strip()
    dest = tmp_path / "models"
    from deeplab_nnapi.patching.clone import clone

    got = clone(f"file://{bare}", sha, dest)
    assert got == sha
    assert git(dest, "rev-parse", "HEAD").strip() == sha
    assert (dest / NNAPI).exists()


def test_clone_into_non_empty_dir_is_refused(cli, tfworld):
    bare = bare_upstream(tfworld)
    dest = tfworld.tmp / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine\n")
    rc, _, err = cli(
        "--manifest",
        tfworld.manifest,
        "--clone-tf",
        "v2.4.1",
        "--tf-url",
        f"file://{bare}",
        "--tf-version",
        "2.x",
        "--tf-dir",
        dest,
    )
    assert rc == 2 and "not an empty directory" in err
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_clone_of_missing_tag_fails_cleanly(cli, tfworld):
    bare = bare_upstream(tfworld)
    dest = tfworld.tmp / "out" / "tf"
    rc, _, err = cli(
        "--manifest",
        tfworld.manifest,
        "--clone-tf",
        "v9.9.9",
        "--tf-url",
        f"file://{bare}",
        "--tf-version",
        "2.x",
        "--tf-dir",
        dest,
        "--json",
    )
    assert rc == 2
    assert (
        err.startswith("apply_patches: error: clone of file://") and "v9.9.9" in err and err.count("\n") == 1
    )
    assert not dest.exists() and list((tfworld.tmp / "out").iterdir()) == []


def test_clone_then_check_json(cli, tfworld):
    bare = bare_upstream(tfworld)
    dest = tfworld.tmp / "tf"
    rc, out, err = cli(
        "--manifest",
        tfworld.manifest,
        "--clone-tf",
        "v2.4.1",
        "--tf-url",
        f"file://{bare}",
        "--tf-version",
        "2.4",
        "--tf-dir",
        dest,
        "--check",
        "--json",
    )
    assert rc == 0, err
    assert {p["state"] for p in json.loads(out)["trees"][0]["patches"]} == {"would-apply"}
    assert git(dest, "status", "--porcelain") == ""


def test_commit_on_a_detached_shallow_clone(cli, tfworld):
    bare = bare_upstream(tfworld)
    dest = tfworld.tmp / "tf"
    rc, _, err = cli(
        "--manifest", tfworld.manifest, "--clone-tf", "v2.4.1", "--tf-url", f"file://{bare}",
        "--tf-version", "2.4.1", "--tf-dir", dest, "--commit",
    )  # fmt: skip
    assert rc == 0, err
    assert git(dest, "log", "--format=%an|%s", "-2").splitlines() == [
        "Patch Author|other: second patch",
        "Patch Author|nnapi: relax the synthetic pool check",
    ]
    assert git(dest, "status", "--porcelain") == ""
