"""The manifest: validation, sha256, selection of the variant per version (test manifests, and the
real patches/manifest.toml when it exists)."""

from __future__ import annotations

import re

import pytest
from apply_helpers import REAL_MANIFEST, write_manifest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.manifest import check_files, load_manifest
from deeplab_nnapi.patching.patchfile import parse_patch
from deeplab_nnapi.patching.select import select_for_tree
from deeplab_nnapi.patching.tfversion import TreeVersion
from packaging.version import Version

PATCH = b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"


def tv(text: str) -> TreeVersion:
    return TreeVersion(Version(text), text, ("tensorflow/core/public/version.h",))


def three_shapes(tmp_path):
    return load_manifest(
        write_manifest(
            tmp_path,
            [
                dict(
                    name="shape-a",
                    target="tensorflow",
                    file="a.patch",
                    data=PATCH,
                    versions=">=2.0,<2.3",
                    touches=["f"],
                ),
                dict(
                    name="shape-b",
                    target="tensorflow",
                    file="b.patch",
                    data=PATCH,
                    versions=">=2.3,<2.5",
                    touches=["f"],
                ),
                dict(
                    name="shape-c",
                    target="tensorflow",
                    file="c.patch",
                    data=PATCH,
                    versions=">=2.5",
                    touches=["f"],
                ),
                dict(
                    name="shape-c-extra",
                    target="tensorflow",
                    file="d.patch",
                    data=PATCH,
                    versions=">=2.5",
                    order=2,
                    touches=["f"],
                ),
                dict(
                    name="models-1", target="models", file="m1.patch", data=PATCH, versions="", touches=["f"]
                ),
                dict(
                    name="models-2",
                    target="models",
                    file="m2.patch",
                    data=PATCH,
                    versions="",
                    touches=["f"],
                    order=2,
                ),
            ],
        )
    )


@pytest.mark.parametrize(
    "version, names",
    [
        ("2.0.0", [["shape-a"]]),
        ("2.2.3", [["shape-a"]]),
        ("2.3.0", [["shape-b"]]),
        ("2.4.4", [["shape-b"]]),
        ("2.5.0rc0", [["shape-c"], ["shape-c-extra"]]),
        ("2.16.1", [["shape-c"], ["shape-c-extra"]]),
    ],
)
def test_selection_by_version(tmp_path, version, names):
    groups = select_for_tree(three_shapes(tmp_path), "tensorflow", tv(version))
    assert [[p.name for p in g] for g in groups] == names


def test_models_variants_are_grouped_by_file_position(tmp_path):
    """models: ``order`` is a file's position; variants at one position (one per upstream text of that
    file) are alternatives; there are no version fallbacks."""
    man = three_shapes(tmp_path)
    groups = select_for_tree(man, "models", None)
    assert [[p.name for p in g] for g in groups] == [["models-1"], ["models-2"]]
    assert man.fallbacks("models", groups[0]) == []


def test_tf_fallbacks_are_the_other_versions_variants_at_the_same_order(tmp_path):
    man = three_shapes(tmp_path)
    group = select_for_tree(man, "tensorflow", tv("2.3.0"))[0]
    assert [p.name for p in man.fallbacks("tensorflow", group)] == ["shape-a", "shape-c"]


def test_unknown_version_lists_supported(tmp_path):
    man = load_manifest(
        write_manifest(
            tmp_path,
            [
                dict(
                    name="a",
                    target="tensorflow",
                    file="a.patch",
                    data=PATCH,
                    versions=">=2.0,<2.3",
                    touches=["f"],
                ),
                dict(
                    name="b",
                    target="tensorflow",
                    file="b.patch",
                    data=PATCH,
                    versions=">=2.3,<2.5",
                    touches=["f"],
                ),
            ],
        )
    )
    with pytest.raises(UsageError) as exc:
        select_for_tree(man, "tensorflow", tv("2.7.0"))
    assert "no TensorFlow patch for version 2.7.0" in str(exc.value)
    assert ">=2.0,<2.3; >=2.3,<2.5" in str(exc.value)
    assert man.supported("tensorflow") == [">=2.0,<2.3", ">=2.3,<2.5"]


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda e: e.update(sha256=None), "missing key 'sha256'"),
        (lambda e: e.update(target="pytorch"), "target 'pytorch' is not one of"),
        (lambda e: e.update(versions=">=two"), "not a PEP 440 specifier set"),
        (lambda e: e.update(sha256="abc"), "sha256 must be 64 lowercase hex digits"),
        (lambda e: e.update(file="../x.patch"), "must be a relative path inside patches/"),
        (lambda e: e.update(touches=["/etc/passwd"]), "is not a relative path inside the tree"),
        (lambda e: e.update(touches=["a/../../b"]), "is not a relative path inside the tree"),
        (lambda e: e.update(touches=[]), "touches is empty"),
        (lambda e: e.update(order="1"), "'order' must be a int"),
        (lambda e: e.update(fixed_marker="(unclosed"), "fixed_marker is not a valid regex"),
    ],
)
def test_invalid_entries_are_refused_with_the_patch_name(tmp_path, change, needle):
    entry = dict(
        name="p1",
        target="tensorflow",
        file="a.patch",
        data=PATCH,
        versions="",
        touches=["f"],
        sha256="0" * 64,
    )
    change(entry)
    path = write_manifest(tmp_path, [entry])
    with pytest.raises(UsageError) as exc:
        load_manifest(path)
    assert needle in str(exc.value) and "p1" in str(exc.value)


def test_duplicate_names_and_schema(tmp_path):
    path = write_manifest(
        tmp_path,
        [
            dict(name="same", target="tensorflow", file="a.patch", data=PATCH, versions="", touches=["f"]),
            dict(name="same", target="tensorflow", file="b.patch", data=PATCH, versions="", touches=["f"]),
        ],
    )
    with pytest.raises(UsageError, match="appears twice"):
        load_manifest(path)
    path.write_text(path.read_text().replace("schema = 1", "schema = 7"))
    with pytest.raises(UsageError, match="schema 7 is not supported"):
        load_manifest(path)
    path.write_text("schema = 1\n[[patch]\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_manifest(path)


def test_check_files_reports_sha_mismatch_and_missing(tmp_path):
    path = write_manifest(
        tmp_path,
        [
            dict(name="a", target="tensorflow", file="a.patch", data=PATCH, versions="", touches=["f"]),
            dict(name="b", target="tensorflow", file="b.patch", data=PATCH, versions="", touches=["f"]),
        ],
    )
    (tmp_path / "a.patch").write_bytes(PATCH + b"x")
    (tmp_path / "b.patch").unlink()
    problems = check_files(load_manifest(path))
    assert len(problems) == 2
    assert (
        problems[0].startswith("patch a: sha256 of a.patch is")
        and problems[1] == "patch b: b.patch is missing"
    )


# ---------------------------------------------------------------------------------------------------
# The real manifest (written by the patch authors); skipped until it exists.

real = pytest.mark.skipif(not REAL_MANIFEST.exists(), reason="patches/manifest.toml not written yet")
# "v2.4.1", "2.8.0", "r2.2" (a release branch)
#: "TF 2.4.0 ..." in a verified_against entry: the TF release that text is (read at a tag or a release branch)
_VERSION_IN_TEXT = re.compile(r"\bTF (2\.\d+(?:\.\d+)?)(?:-?rc\d+)?\b(?! release text INFERRED)")
#: The newest TensorFlow release line when this was written (tensorflow-cpu 2.21 on PyPI).
NEWEST_TF_MINOR = 21


def _verified_versions(patch) -> list:
    out = []
    for v in patch.verified_against:
        m = _VERSION_IN_TEXT.search(v)
        if m:
            out.append(Version(m.group(1)))
    return out


@real
def test_real_manifest_loads_and_every_file_matches_its_sha256():
    man = load_manifest(REAL_MANIFEST)
    assert check_files(man) == []
    assert {p.target for p in man.patches} == {"tensorflow", "models"}


@real
def test_real_patches_touch_exactly_their_listed_files():
    for p in load_manifest(REAL_MANIFEST).patches:
        parsed = parse_patch(p.path.read_bytes())
        assert parsed.files, p.name
        assert set(parsed.paths()) <= set(p.touches), p.name
        assert p.purpose.strip() and "\n" not in p.purpose, p.name
        assert p.verified_against, f"{p.name}: verified_against is empty"
        data = p.path.read_bytes()
        assert data.startswith(b"From ") and b"\nSubject: " in data, f"{p.name}: not a git format-patch file"


@real
def test_real_manifest_models_patches_name_their_upstream_commits_and_blobs():
    """Each models patch is generated for one upstream text: it names the upstream commits that carry that
    text (full ids, the same ones it was verified on), and its pre- and post-image blobs, which must be the
    patch's own index line; one patch per text, one file per patch, from the rule the manifest names."""
    man = load_manifest(REAL_MANIFEST)
    rule = man.rule("models")
    assert rule is not None and [f.path for f in rule.files] == [
        "research/deeplab/core/utils.py", "research/deeplab/model.py", "research/deeplab/export_model.py"]
    seen = set()
    models = man.for_target("models")
    assert models
    for p in models:
        assert p.upstream_commits, p.name
        assert all(re.fullmatch(r"[0-9a-f]{40}", c) for c in p.upstream_commits), p.name
        assert all(any(c in v for c in p.upstream_commits) for v in p.verified_against), p.name
        assert len(p.touches) == 1 and rule.file(p.touches[0]).order == p.order, p.name
        rel = p.touches[0]
        pre, post = p.blob_of(rel), p.blob_of(rel, post=True)
        assert pre and post and (rel, pre) not in seen, p.name
        seen.add((rel, pre))
        text = p.path.read_text()
        assert re.search(rf"diff --git a/{re.escape(rel)} .*\nindex {pre}\.\.{post} ", text), p.name
        assert p.path.name == f"{pre[:12]}.patch", p.name
    # the final upstream state (every clone today) is covered for every file
    final = "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"
    assert {p.touches[0] for p in models if final in p.upstream_commits} == {f.path for f in rule.files}


@real
def test_real_manifest_covers_every_tf2_minor_without_overlap():
    man = load_manifest(REAL_MANIFEST)
    tf = man.for_target("tensorflow")
    assert tf
    for minor in range(0, NEWEST_TF_MINOR + 1):
        v = Version(f"2.{minor}.0")
        groups = select_for_tree(man, "tensorflow", tv(str(v)))
        assert groups, f"no TensorFlow patch for {v}"
        for g in groups:
            # alternatives for one TF version must be different shapes of the check (which exclude each
            # other: a text of one shape accepts no other shape's patch), never two patches for one shape
            shapes = [p.shape for p in g]
            assert all(shapes) and len(set(shapes)) == len(shapes), f"{v}: {[p.name for p in g]}"


@real
def test_real_manifest_variant_verified_against_versions_it_claims():
    """Every TensorFlow variant names the real upstream texts it was checked on (repository@full commit, and
    the text's blob); every TF 2.x release it names lies in its version range. A variant for a shape that
    was in no release (b0) names master commits; the LiteRT variant names LiteRT tags."""
    man = load_manifest(REAL_MANIFEST)
    for p in man.for_target("tensorflow"):
        assert p.shape and p.upstream_blobs and p.post_blobs, p.name
        cited = [e for e in p.verified_against if re.search(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}\b", e)]
        assert cited, f"{p.name}: verified_against names no repository@commit"
        for v in _verified_versions(p):
            assert p.matches(Version(v.base_version)), f"{p.name}: verified against {v} outside {p.versions}"
        if p.layout == "litert":
            assert all("google-ai-edge/LiteRT@" in e for e in cited), p.name
        elif p.shape != "b0":
            assert _verified_versions(p), f"{p.name}: verified_against names no TF release"
