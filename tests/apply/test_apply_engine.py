"""apply_patches end to end on synthetic git trees: apply, check, reverse, commit, idempotence,
atomic rollback, dirty trees, refused patches, 3-way fallback, fixed upstream, plain directories."""

from __future__ import annotations

import json

import pytest
from apply_helpers import (
    NNAPI,
    RELAXED,
    delegate_source,
    format_patch,
    git,
    make_repo,
    sha256,
    snapshot,
    version_h,
    write_files,
    write_manifest,
)


def run_apply(cli, world, tree, *extra, version="2.x"):
    return cli("--manifest", world.manifest, "--tf-version", version, "--tf-dir", tree, *extra)


def test_apply_changes_only_the_patched_lines(cli, tfworld):
    tree = tfworld.clone()
    before = snapshot(tree)
    rc, out, err = run_apply(cli, tfworld, tree)
    assert rc == 0, err
    after = snapshot(tree)
    changed = {k for k in before["files"] if before["files"][k] != after["files"][k]}
    assert changed == {NNAPI, "tensorflow/lite/other.cc"}
    old = before["files"][NNAPI][0].decode().splitlines()
    new = after["files"][NNAPI][0].decode().splitlines()
    diff = [(a, b) for a, b in zip(old, new) if a != b]
    assert diff == [("      if (pool_area > 256) return false;  // synthetic check", RELAXED)]
    # the real index and HEAD are untouched: the changes show as unstaged modifications
    assert after["head"] == before["head"] and after["index"] == before["index"]
    assert sorted(after["status"].splitlines()) == [f" M {NNAPI}", " M tensorflow/lite/other.cc"]
    assert "[tensorflow 1/2] tf-relax: applied (clean)" in err


def test_second_run_reports_already_applied_and_changes_nothing(cli, tfworld):
    tree = tfworld.clone()
    assert run_apply(cli, tfworld, tree)[0] == 0
    mid = snapshot(tree)
    rc, out, _ = run_apply(cli, tfworld, tree, "--json")
    assert rc == 0
    rep = json.loads(out)
    states = [(p["name"], p["state"], p["strategy"]) for p in rep["trees"][0]["patches"]]
    assert states == [
        ("tf-relax", "already-applied", "already-applied"),
        ("tf-other", "already-applied", "already-applied"),
    ]
    assert rep["trees"][0]["changed_files"] == []
    after = snapshot(tree)
    assert after == mid
    # mtimes untouched too: nothing was rewritten
    assert all(after["files"][k][1] == mid["files"][k][1] for k in mid["files"])


def test_check_changes_nothing_and_exits_zero(cli, tfworld):
    tree = tfworld.clone()
    before = snapshot(tree)
    rc, out, _ = run_apply(cli, tfworld, tree, "--check", "--json")
    assert rc == 0
    rep = json.loads(out)
    assert rep["mode"] == "apply-check" and rep["ok"] is True and rep["exit_code"] == 0
    assert [p["state"] for p in rep["trees"][0]["patches"]] == ["would-apply", "would-apply"]
    assert snapshot(tree) == before


def test_json_report_format(cli, tfworld):
    tree = tfworld.clone()
    rc, out, err = run_apply(cli, tfworld, tree, "--json")
    assert rc == 0 and err == ""  # --json: no progress lines
    rep = json.loads(out)
    t = rep["trees"][0]
    assert t["target"] == "tensorflow" and t["version"] == "2.4.1" and t["requested"] == "2.x"
    assert t["git"] is True and t["ok"] is True
    assert sorted(t["changed_files"]) == sorted([NNAPI, "tensorflow/lite/other.cc"])
    p = t["patches"][0]
    assert {k: p[k] for k in ("name", "target", "file", "strategy", "state")} == {
        "name": "tf-relax",
        "target": "tensorflow",
        "file": "tensorflow/0001-relax.patch",
        "strategy": "clean",
        "state": "applied",
    }


def test_reverse_restores_the_original_bytes(cli, tfworld):
    tree = tfworld.clone()
    before = snapshot(tree)
    assert run_apply(cli, tfworld, tree)[0] == 0
    rc, out, err = run_apply(cli, tfworld, tree, "--reverse", "--json")
    assert rc == 0, err
    assert [p["state"] for p in json.loads(out)["trees"][0]["patches"]] == ["reversed", "reversed"]
    after = snapshot(tree)
    assert {k: v[0] for k, v in after["files"].items()} == {k: v[0] for k, v in before["files"].items()}
    assert after["status"] == ""
    # reversing again: nothing to reverse, exit 0
    rc, out, _ = run_apply(cli, tfworld, tree, "--reverse", "--json")
    assert rc == 0
    assert [p["state"] for p in json.loads(out)["trees"][0]["patches"]] == ["not-applied", "not-applied"]


def test_commit_mode_makes_one_commit_per_patch_with_the_patch_author(cli, tfworld):
    tree = tfworld.clone()
    base = git(tree, "rev-parse", "HEAD").strip()
    rc, out, err = run_apply(cli, tfworld, tree, "--commit", "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]
    log = git(tree, "log", "--format=%an|%ae|%aI|%s|%b%x00", f"{base}..HEAD").split("\0")
    log = [e.strip() for e in log if e.strip()]
    assert len(log) == 2
    newest, oldest = log
    an, ae, ad, subject, body = oldest.split("|", 4)
    assert (an, ae, subject) == (
        "Patch Author",
        "author@example.org",
        "nnapi: relax the synthetic pool check",
    )
    assert ad.startswith("2021-03-04T05:06:07")
    assert "Longer explanation of why." in body and "Second paragraph." in body
    assert newest.split("|")[3] == "other: second patch"
    assert git(tree, "status", "--porcelain") == ""
    assert rep["head_before"] == base and rep["head_after"] == git(tree, "rev-parse", "HEAD").strip()
    assert [p["commit"] for p in rep["patches"]] == git(
        tree, "rev-list", "--reverse", f"{base}..HEAD"
    ).split()
    # the commits hold exactly the patches' changes
    assert git(tree, "diff", "--stat", base, "HEAD").count("|") == 2
    # idempotent: a second --commit run makes no commit
    assert run_apply(cli, tfworld, tree, "--commit")[0] == 0
    assert git(tree, "rev-list", "--count", f"{base}..HEAD").strip() == "2"


def test_commit_reverse_makes_revert_commits(cli, tfworld):
    tree = tfworld.clone()
    base = git(tree, "rev-parse", "HEAD").strip()
    assert run_apply(cli, tfworld, tree, "--commit")[0] == 0
    rc, _, err = run_apply(cli, tfworld, tree, "--commit", "--reverse")
    assert rc == 0, err
    subjects = git(tree, "log", "--format=%s", "-2").splitlines()
    assert subjects == ['Revert "nnapi: relax the synthetic pool check"', 'Revert "other: second patch"']
    assert git(tree, "diff", base, "HEAD") == ""
    assert git(tree, "status", "--porcelain") == ""


def test_conflict_in_a_later_patch_leaves_the_tree_byte_identical(cli, tfworld):
    tree = tfworld.clone()
    # patch 2's context is gone in this tree; patch 1 would apply
    other = (tree / "tensorflow/lite/other.cc").read_text().replace("// other 15", "// other 15 CHANGED")
    write_files(tree, {"tensorflow/lite/other.cc": other})
    git(tree, "commit", "-qam", "local change")
    # and an unrelated local edit that must survive untouched
    write_files(tree, {"README": "local edit\n", "untracked.txt": "x\n"})
    before = snapshot(tree)
    rc, out, err = run_apply(cli, tfworld, tree)
    assert rc == 1
    assert snapshot(tree) == before
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "apply_patches: error: patch tf-other (tensorflow/0002-other.patch) does not apply"
    )
    assert "tensorflow/lite/other.cc: hunk #1 of 1 (@@ -13,7 +13,7 @@)" in last
    assert "nothing was changed" in last
    rc, out, _ = run_apply(cli, tfworld, tree, "--json")
    rep = json.loads(out)
    assert rep["ok"] is False and rep["exit_code"] == 1
    p1, p2 = rep["trees"][0]["patches"]
    assert p1["state"] == "applied"  # planned; not written because patch 2 failed
    assert rep["trees"][0]["changed_files"] == []
    assert p2["state"] == "conflict" and p2["path"] == "tensorflow/lite/other.cc"
    assert p2["hunk"].startswith("hunk #1 of 1")
    assert snapshot(tree) == before


def test_conflict_in_commit_mode_makes_no_commit(cli, tfworld):
    tree = tfworld.clone()
    other = (tree / "tensorflow/lite/other.cc").read_text().replace("// other 15", "// other 15 CHANGED")
    write_files(tree, {"tensorflow/lite/other.cc": other})
    git(tree, "commit", "-qam", "local change")
    before = snapshot(tree)
    reflog = git(tree, "reflog")
    assert run_apply(cli, tfworld, tree, "--commit")[0] == 1
    assert snapshot(tree) == before
    assert git(tree, "reflog") == reflog


def test_hunk_number_is_named_for_multi_hunk_patches(cli, tmp_path):
    body = [f"line {i}" for i in range(1, 61)]
    src = make_repo(
        tmp_path / "up",
        {"tensorflow/core/public/version.h": version_h(2, 5, 0), "a.txt": "\n".join(body) + "\n"},
    )
    new = list(body)
    new[4], new[49] = "line 5 patched", "line 50 patched"
    patch = format_patch(src, {"a.txt": "\n".join(new) + "\n"}, "two hunks")
    man = write_manifest(
        tmp_path / "p",
        [dict(name="two", target="tensorflow", file="two.patch", data=patch, versions="", touches=["a.txt"])],
    )
    drift = list(body)
    drift[52] = "line 53 drifted"  # inside hunk 2's context, not next to its change
    write_files(src, {"a.txt": "\n".join(drift) + "\n"})
    git(src, "commit", "-qam", "drift")
    git(src, "gc", "-q", "--prune=now")  # keep the pre-image blob? it is in history: 3-way will be tried
    rc, out, err = cli("--manifest", man, "--tf-version", "2.5", "--tf-dir", src, "--json")
    # the pre-image blob is in history and the drift does not overlap: 3-way merges it
    assert rc == 0, err
    assert json.loads(out)["trees"][0]["patches"][0]["strategy"] == "3way"
    # now a tree without that history: plain apply fails on hunk 2 of 2
    plain = make_repo(
        tmp_path / "fresh",
        {"tensorflow/core/public/version.h": version_h(2, 5, 0), "a.txt": "\n".join(drift) + "\n"},
    )
    rc, _, err = cli("--manifest", man, "--tf-version", "2.5", "--tf-dir", plain)
    assert rc == 1
    assert "a.txt: hunk #2 of 2 (@@ -47,7 +47,7 @@) does not match" in err
    assert "pre-image blob" in err and "is not in the repository" in err


def test_dirty_touched_file_is_refused_unless_allow_dirty(cli, tfworld):
    tree = tfworld.clone()
    write_files(tree, {NNAPI: "// local edit\n" + (tree / NNAPI).read_text()})
    before = snapshot(tree)
    rc, _, err = run_apply(cli, tfworld, tree)
    assert rc == 2
    assert err.count("\n") == 1 and NNAPI in err and "--allow-dirty" in err
    assert snapshot(tree) == before
    # an untracked edit elsewhere is not a reason to refuse
    rc, _, err = run_apply(cli, tfworld, tree, "--allow-dirty")
    assert rc == 0, err
    text = (tree / NNAPI).read_text()
    assert text.startswith("// local edit\n") and RELAXED in text


def test_dirty_unrelated_file_is_fine(cli, tfworld):
    tree = tfworld.clone()
    write_files(tree, {"README": "edited\n"})
    rc, _, err = run_apply(cli, tfworld, tree)
    assert rc == 0, err
    assert (tree / "README").read_text() == "edited\n"


def test_commit_refuses_allow_dirty(cli, tfworld):
    tree = tfworld.clone()
    rc, _, err = run_apply(cli, tfworld, tree, "--commit", "--allow-dirty")
    assert rc == 2 and "--allow-dirty" in err


def test_sha256_mismatch_is_refused(cli, tfworld):
    tree = tfworld.clone()
    pf = tfworld.patches_dir / "tensorflow/0002-other.patch"
    pf.write_bytes(pf.read_bytes() + b"\n")
    before = snapshot(tree)
    rc, _, err = run_apply(cli, tfworld, tree)
    assert rc == 2
    assert "patch tf-other: sha256 of tensorflow/0002-other.patch is" in err and err.count("\n") == 1
    assert snapshot(tree) == before


@pytest.mark.parametrize("bad_path", ["../outside.txt", "/etc/passwd-test", "tensorflow/../../x"])
def test_patch_touching_a_path_outside_the_tree_is_refused(cli, tmp_path, bad_path):
    tree = make_repo(tmp_path / "t", {"tensorflow/core/public/version.h": version_h(2, 6, 0), "a": "a\n"})
    stripped = bad_path.lstrip("/")
    patch = (
        f"From: X <x@y>\nSubject: [PATCH] evil\n\n---\n"
        f"diff --git a/{stripped} b/{stripped}\nnew file mode 100644\nindex 0000000..78981922\n"
        f"--- /dev/null\n+++ {'b/' + stripped if not bad_path.startswith('/') else bad_path}\n"
        "@@ -0,0 +1 @@\n+a\n"
    ).encode()
    man = write_manifest(
        tmp_path / "p",
        [dict(name="evil", target="tensorflow", file="evil.patch", data=patch, versions="", touches=["a"])],
    )
    rc, _, err = cli("--manifest", man, "--tf-version", "2.x", "--tf-dir", tree)
    assert rc == 2
    assert "patch evil: touches" in err and "refused" in err
    assert not (tmp_path / "outside.txt").exists()


def test_patch_touching_a_path_not_in_touches_is_refused(cli, tfworld):
    tree = tfworld.clone()
    text = tfworld.manifest.read_text().replace(
        'touches = ["tensorflow/lite/other.cc"]', 'touches = ["x.cc"]'
    )
    tfworld.manifest.write_text(text)
    rc, _, err = run_apply(cli, tfworld, tree)
    assert rc == 2
    assert "patch tf-other: touches tensorflow/lite/other.cc, which the manifest's touches do not list" in err


def test_symlinked_directory_escaping_the_tree_is_refused(cli, tfworld, tmp_path):
    tree = tfworld.clone()
    outside = tmp_path / "elsewhere"
    (outside / "lite").mkdir(parents=True)
    (outside / "lite/other.cc").write_text((tree / "tensorflow/lite/other.cc").read_text())
    import shutil

    shutil.rmtree(tree / "tensorflow/lite")
    (tree / "tensorflow/lite").symlink_to(outside / "lite")
    rc, _, err = run_apply(cli, tfworld, tree, "--allow-dirty")
    assert rc == 2 and "symlink" in err


def test_version_mismatch_names_both(cli, tfworld):
    tree = tfworld.clone()
    rc, _, err = run_apply(cli, tfworld, tree, version="2.5")
    assert rc == 2
    assert "--tf-version 2.5 does not match the tree" in err and "TensorFlow 2.4.1" in err
    assert run_apply(cli, tfworld, tree, version="2.4.0")[0] == 2
    assert run_apply(cli, tfworld, tree, "--check", version="2.4.1")[0] == 0
    assert run_apply(cli, tfworld, tree, "--check", version="2.4")[0] == 0


def test_unknown_version_lists_the_supported_ones(cli, tmp_path, tfworld):
    man = write_manifest(
        tmp_path / "p2",
        [
            dict(
                name="a",
                target="tensorflow",
                file="a.patch",
                data=tfworld.p1,
                versions=">=2.0,<2.3",
                touches=[NNAPI],
            ),
            dict(
                name="b",
                target="tensorflow",
                file="b.patch",
                data=tfworld.p1,
                versions=">=2.3,<2.4",
                touches=[NNAPI],
            ),
        ],
    )
    tree = tfworld.clone()  # 2.4.1
    rc, _, err = cli("--manifest", man, "--tf-version", "2.x", "--tf-dir", tree)
    assert rc == 2
    assert "no TensorFlow patch for version 2.4.1" in err
    assert ">=2.0,<2.3" in err and ">=2.3,<2.4" in err
    rc, _, err = cli("--manifest", man, "--list", "--tf-version", "2.9")
    assert rc == 2 and ">=2.0,<2.3" in err


def test_fixed_upstream_is_reported_and_changes_nothing(cli, tfworld):
    tree = tfworld.clone()
    # the upstream check is gone (different text at the patched spot)
    write_files(tree, {NNAPI: delegate_source("      // upstream removed the pool limit")})
    git(tree, "commit", "-qam", "upstream fixed it")
    # ... and the pre-image blob is not reachable: make a fresh repo from the files
    fresh = make_repo(
        tree.parent / "fresh",
        {
            p: (tree / p).read_text()
            for p in ["tensorflow/core/public/version.h", NNAPI, "tensorflow/lite/other.cc", "README"]
        },
    )
    before = snapshot(fresh)
    rc, out, err = run_apply(cli, tfworld, fresh, "--json")
    assert rc == 0, err
    p1, p2 = json.loads(out)["trees"][0]["patches"]
    assert p1["strategy"] == "fixed-upstream" and p1["state"] == "fixed-upstream"
    assert "fixed upstream / already relaxed" in p1["message"]
    assert p2["state"] == "applied"
    after = snapshot(fresh)
    assert after["files"][NNAPI] == before["files"][NNAPI]


def test_three_way_fallback_on_drifted_vendor_fork(cli, tfworld):
    tree = tfworld.clone()
    # the vendor changed a context line two lines above the check: plain apply fails
    text = (
        (tree / NNAPI).read_text().replace("// synthetic line 20\n", "// synthetic line 20  // vendor note\n")
    )
    write_files(tree, {NNAPI: text})
    git(tree, "commit", "-qam", "vendor drift")
    before = snapshot(tree)
    rc, out, err = run_apply(cli, tfworld, tree, "--json")
    assert rc == 0, err
    p1 = json.loads(out)["trees"][0]["patches"][0]
    assert p1["strategy"] == "3way" and p1["state"] == "applied"
    new = (tree / NNAPI).read_text()
    assert "// synthetic line 20  // vendor note" in new and RELAXED in new
    assert "pool_area > 256" not in new
    assert "<<<<<<<" not in new
    # only the intended line differs from the vendor's version
    diff = [
        (a, b) for a, b in zip(before["files"][NNAPI][0].decode().splitlines(), new.splitlines()) if a != b
    ]
    assert len(diff) == 1 and diff[0][1] == RELAXED
    # the index is left alone (3-way ran in a scratch index)
    assert snapshot(tree)["index"] == before["index"]
    # a second run: the drifted tree is recognised as patched (check gone) and left alone
    mid = snapshot(tree)
    rc, out, _ = run_apply(cli, tfworld, tree, "--json")
    assert rc == 0
    assert json.loads(out)["trees"][0]["patches"][0]["state"] == "already-applied"
    assert snapshot(tree) == mid
    # and --reverse takes it out again by a reverse 3-way merge: the vendor's bytes come back
    rc, out, err = run_apply(cli, tfworld, tree, "--reverse", "--json")
    assert rc == 0, err
    p1 = json.loads(out)["trees"][0]["patches"][1]
    assert (p1["name"], p1["strategy"], p1["state"]) == ("tf-relax", "3way", "reversed")
    assert snapshot(tree)["files"] == before["files"]
    assert git(tree, "status", "--porcelain") == ""


def test_three_way_with_conflicts_is_rolled_back(cli, tfworld):
    tree = tfworld.clone()
    # the vendor changed the very line we change: a real conflict
    text = (
        (tree / NNAPI)
        .read_text()
        .replace("if (pool_area > 256) return false;", "if (pool_area > 1024) return false;")
    )
    write_files(tree, {NNAPI: text})
    git(tree, "commit", "-qam", "vendor raised the limit")
    before = snapshot(tree)
    text2 = tfworld.manifest.read_text().replace(
        'fixed_marker = "pool_area > 256"', 'fixed_marker = "pool_area > \\\\d+"'
    )
    tfworld.manifest.write_text(text2)
    rc, out, err = run_apply(cli, tfworld, tree)
    assert rc == 1
    assert "3-way merge" in err and "conflicts" in err
    assert snapshot(tree) == before
    assert not list(tree.rglob("*.orig")) and not list(tree.rglob("*.rej"))


def test_plain_directory_is_supported(cli, tfworld, tmp_path):
    tree = tmp_path / "plain"
    for rel in ("tensorflow/core/public/version.h", NNAPI, "tensorflow/lite/other.cc"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes((tfworld.src / rel).read_bytes())
    rc, out, err = run_apply(cli, tfworld, tree, "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]
    assert rep["git"] is False
    assert RELAXED in (tree / NNAPI).read_text()
    assert not (tree / ".git").exists()
    rc, out, _ = run_apply(cli, tfworld, tree, "--json")
    assert rc == 0 and {p["state"] for p in json.loads(out)["trees"][0]["patches"]} == {"already-applied"}
    rc, _, err = run_apply(cli, tfworld, tree, "--commit")
    assert rc == 2 and "not a git repository" in err


def test_file_mode_is_kept(cli, tfworld):
    tree = tfworld.clone()
    (tree / NNAPI).chmod(0o640)
    rc, _, err = run_apply(cli, tfworld, tree, "--allow-dirty")
    assert rc == 0, err
    assert (tree / NNAPI).stat().st_mode & 0o777 == 0o640


def test_models_alternatives_first_that_applies_wins(cli, tmp_path):
    dl = "research/deeplab/model.py"
    old_a = "\n".join([f"# a{i}" for i in range(10)] + ["x = resize(align_corners=True)"]) + "\n"
    old_b = "\n".join([f"# b{i}" for i in range(10)] + ["y = resize(align_corners=True)"]) + "\n"
    up_a = make_repo(tmp_path / "ua", {dl: old_a})
    pa = format_patch(up_a, {dl: old_a.replace("True", "False")}, "deeplab: variant A")
    up_b = make_repo(tmp_path / "ub", {dl: old_b})
    pb = format_patch(up_b, {dl: old_b.replace("True", "False")}, "deeplab: variant B")
    man = write_manifest(
        tmp_path / "p",
        [
            dict(
                name="models-a",
                target="models",
                file="models/a.patch",
                data=pa,
                versions="",
                touches=[dl],
                upstream_commits=["aaaa"],
            ),
            dict(
                name="models-b",
                target="models",
                file="models/b.patch",
                data=pb,
                versions="",
                touches=[dl],
                upstream_commits=["bbbb"],
            ),
        ],
    )
    rc, out, err = cli("--manifest", man, "--models-dir", up_b, "--json")
    assert rc == 0, err
    p = json.loads(out)["trees"][0]["patches"]
    assert len(p) == 1 and p[0]["name"] == "models-b" and p[0]["alternatives"] == ["models-a", "models-b"]
    assert "align_corners=False" in (up_b / dl).read_text()
    rc, out, _ = cli("--manifest", man, "--models-dir", up_b, "--json")
    assert json.loads(out)["trees"][0]["patches"][0]["state"] == "already-applied"
    # a tree neither variant fits: both are named in the error
    other = make_repo(tmp_path / "uc", {dl: "z = 1\n"})
    rc, _, err = cli("--manifest", man, "--models-dir", other)
    assert rc == 1 and "none of the 2 variants applies" in err and "models-a" in err and "models-b" in err


def test_both_trees_are_atomic_together(cli, tfworld, tmp_path):
    dl = "research/deeplab/model.py"
    up = make_repo(tmp_path / "m", {dl: "a = 1\nb = 2\nc = 3\n"})
    pm = format_patch(up, {dl: "a = 1\nb = 20\nc = 3\n"}, "deeplab change")
    text = tfworld.manifest.read_text()
    man = write_manifest(
        tmp_path / "pm", [dict(name="m", target="models", file="m.patch", data=pm, versions="", touches=[dl])]
    )
    (tfworld.patches_dir / "m.patch").write_bytes(pm)
    tfworld.manifest.write_text(text + man.read_text().replace("schema = 1", ""))
    tree = tfworld.clone()
    write_files(up, {dl: "a = 1\nb = 99\nc = 3\n"})  # models tree will conflict
    git(up, "commit", "-qam", "drift")
    git(up, "reflog", "expire", "--expire=now", "--all")
    before_tf, before_m = snapshot(tree), snapshot(up)
    rc, _, err = cli(
        "--manifest", tfworld.manifest, "--tf-version", "2.x", "--tf-dir", tree, "--models-dir", up
    )
    assert rc == 1
    assert snapshot(tree) == before_tf and snapshot(up) == before_m


def test_list_shows_the_table(cli, tfworld):
    rc, out, _ = cli("--manifest", tfworld.manifest, "--list", "--tf-version", "2.4")
    assert rc == 0
    assert out.splitlines()[0].split()[:4] == ["NAME", "TARGET", "VERSIONS", "ORDER"]
    assert "tf-relax" in out and "tf-other" in out
    rc, out, _ = cli("--manifest", tfworld.manifest, "--list", "--json")
    assert rc == 0 and [p["name"] for p in json.loads(out)["patches"]] == ["tf-relax", "tf-other"]


def test_usage_errors_are_one_line_exit_2(cli, tfworld, tmp_path):
    tree = tfworld.clone()
    cases = [
        (["--tf-dir", tree], "--tf-dir needs --tf-version"),
        (["--tf-version", "2.x"], "--tf-version needs --tf-dir"),
        (["--tf-version", "1.15", "--tf-dir", tree], "only TensorFlow 2.x"),
        (["--tf-version", "banana", "--tf-dir", tree], "expected 2.x, 2.N or 2.N.M"),
        ([], "nothing to do"),
        (["--tf-version", "2.x", "--tf-dir", tmp_path / "nope"], "does not exist"),
        (["--tf-version", "2.x", "--tf-dir", tree, "--check", "--commit"], "exclude each other"),
        (["--clone-tf", "v2.4.1", "--tf-version", "2.x"], "--clone-tf needs --tf-dir"),
    ]
    for args, needle in cases:
        rc, out, err = cli("--manifest", tfworld.manifest, *args)
        assert rc == 2, (args, err)
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    rc, _, err = cli("--manifest", tmp_path / "missing.toml", "--list")
    assert rc == 2 and "manifest not found" in err


def test_tree_without_version_files_trusts_the_requested_version(cli, tfworld, tmp_path):
    """A tflite-only tree (the delegate, no version file): --tf-version 2.N is trusted, 2.x lets the text
    decide; the report says which. A tree with neither delegate nor version file is bad input."""
    other = (tfworld.src / "tensorflow/lite/other.cc").read_text()
    tree = make_repo(tmp_path / "nov", {NNAPI: delegate_source(), "tensorflow/lite/other.cc": other})
    args = ("--manifest", tfworld.manifest, "--tf-version", "2.4", "--tf-dir", tree)
    rc, out, _ = cli(*args, "--check", "--json")
    rep = json.loads(out)["trees"][0]
    assert rc == 0 and rep["layout"] == "tflite-only" and rep["version"] == "2.4"
    assert "no version file" in rep["version_source"] and "trusted" in rep["version_source"]
    rc, out, _ = cli("--manifest", tfworld.manifest, "--tf-version", "2.x", "--tf-dir", tree, "--json")
    rep = json.loads(out)["trees"][0]
    assert rc == 0 and rep["version"] is None and "chosen by the text" in rep["version_source"]
    assert [p["state"] for p in rep["patches"]] == ["applied", "applied"]
    empty = make_repo(tmp_path / "empty", {"README": "nothing here\n"})
    rc, out, err = cli("--manifest", tfworld.manifest, "--tf-version", "2.x", "--tf-dir", empty)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "no NNAPI delegate here" in err


def test_env_var_locates_the_manifest(cli, tfworld, monkeypatch):
    monkeypatch.setenv("DEEPLAB_NNAPI_PATCHES", str(tfworld.patches_dir))
    rc, out, _ = cli("--list")
    assert rc == 0 and "tf-relax" in out


def test_thin_script_runs_as_a_subprocess(tfworld):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "tools" / "apply_patches.py"
    tree = tfworld.clone()
    res = subprocess.run(
        [
            sys.executable,
            str(script),
            "--manifest",
            str(tfworld.manifest),
            "--tf-version",
            "2.x",
            "--tf-dir",
            str(tree),
            "--check",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "would-apply" in res.stderr


def test_tree_status_contract(tfworld):
    from deeplab_nnapi.patching.manifest import load_manifest
    from deeplab_nnapi.patching.status import tree_status

    man = load_manifest(tfworld.manifest)
    tree = tfworld.clone()
    st = tree_status(tree, "tensorflow", manifest=man)
    assert st.state == "applicable" and not st.ok
    from deeplab_nnapi.cli.apply_patches import main

    assert (
        main(["--manifest", str(tfworld.manifest), "--tf-version", "2.x", "--tf-dir", str(tree), "-q"]) == 0
    )
    st = tree_status(tree, "tensorflow", "2.4", manifest=man)
    assert st.state == "applied" and st.ok and "tf-relax" in st.message
    write_files(tree, {"tensorflow/lite/other.cc": "gone\n"})
    st = tree_status(tree, "tensorflow", manifest=man)
    assert st.state == "conflict" and "tf-other" in st.message


def test_sha256_helper_matches_manifest(tfworld):
    from deeplab_nnapi.patching.manifest import check_files, load_manifest

    man = load_manifest(tfworld.manifest)
    assert check_files(man) == []
    assert man.by_name("tf-relax").sha256 == sha256(tfworld.p1)


def test_ambiguous_tree_is_a_conflict_not_a_double_apply(cli, tmp_path):
    head = [f"head {i}" for i in range(10)]
    tail = [f"tail {i}" for i in range(10)]
    pre = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"]
    post = ["alpha", "beta", "gamma", "DELTA", "eps", "zeta", "eta"]
    src = make_repo(
        tmp_path / "up",
        {
            "tensorflow/core/public/version.h": version_h(2, 7, 0),
            "f.txt": "\n".join(head + pre + tail) + "\n",
        },
    )
    patch = format_patch(src, {"f.txt": "\n".join(head + post + tail) + "\n"}, "delta")
    man = write_manifest(
        tmp_path / "p",
        [dict(name="d", target="tensorflow", file="d.patch", data=patch, versions="", touches=["f.txt"])],
    )
    # the file holds both the pre-image and the post-image blocks
    write_files(src, {"f.txt": "\n".join(head + pre + ["filler"] * 10 + post + tail) + "\n"})
    git(src, "commit", "-qam", "both")
    before = snapshot(src)
    rc, _, err = cli("--manifest", man, "--tf-version", "2.7.0", "--tf-dir", src)
    assert rc == 1 and "both the patch and its reverse apply" in err
    assert snapshot(src) == before


def test_commit_needs_clean_files_even_when_the_changes_are_ours(cli, tfworld):
    tree = tfworld.clone()
    assert run_apply(cli, tfworld, tree)[0] == 0
    before = snapshot(tree)
    for mode in ([], ["--reverse"]):
        rc, _, err = run_apply(cli, tfworld, tree, "--commit", *mode)
        assert rc == 2 and "--commit needs them clean" in err
    assert snapshot(tree) == before


def test_tf_falls_back_to_another_versions_variant_when_the_boundary_is_off(cli, tmp_path, tfworld):
    # shape X is the tfworld delegate; shape Y is a different text of the same check
    other_shape = delegate_source("      if (window > 256) return false;  // synthetic shape Y")
    up_y = make_repo(tmp_path / "upy", {NNAPI: other_shape})
    p_y = format_patch(up_y, {NNAPI: delegate_source("      // shape Y relaxed")}, "relax shape Y")
    man = write_manifest(
        tmp_path / "p2",
        [
            dict(name="shape-x", target="tensorflow", file="x.patch", data=tfworld.p1, versions=">=2.0,<2.4",
                 touches=[NNAPI], fixed_marker="> 256"),
            dict(name="shape-y", target="tensorflow", file="y.patch", data=p_y, versions=">=2.4",
                 touches=[NNAPI], fixed_marker="> 256"),
        ],
    )  # fmt: skip
    tree = tfworld.clone()  # TF 2.4.1 whose text is still shape X
    rc, out, err = cli("--manifest", man, "--tf-version", "2.x", "--tf-dir", tree, "--json")
    assert rc == 0, err
    p = json.loads(out)["trees"][0]["patches"]
    assert [(x["name"], x["strategy"], x["state"]) for x in p] == [("shape-x", "clean", "applied")]
    assert p[0]["message"].startswith("fallback: the variant for TensorFlow >=2.0,<2.4 fits this tree")
    assert RELAXED in (tree / NNAPI).read_text()
    rc, out, _ = cli("--manifest", man, "--tf-version", "2.x", "--tf-dir", tree, "--json")
    assert json.loads(out)["trees"][0]["patches"][0]["state"] == "already-applied"
    rc, out, _ = cli("--manifest", man, "--tf-version", "2.x", "--tf-dir", tree, "--reverse", "--json")
    assert rc == 0 and json.loads(out)["trees"][0]["patches"][0]["state"] == "reversed"
    assert git(tree, "status", "--porcelain") == ""
    # a tree that fits neither: the error is about the variant for its version
    write_files(tree, {NNAPI: delegate_source("      if (other > 256) return false;")})
    git(tree, "commit", "-qam", "third shape")
    rc, _, err = cli("--manifest", man, "--tf-version", "2.x", "--tf-dir", tree)
    assert rc == 1 and "patch shape-y (y.patch) does not apply" in err
