"""The real patches (patches/manifest.toml) on fixture files rebuilt from each patch's own pre-image.

For every patch: a git repo holding, for each file the patch modifies, the hunks' context and removed
lines at their exact line numbers (filler lines elsewhere), plus a TF version header for a version the
patch is for. Applying must change exactly the hunks' lines; a second run must find it applied; a
reverse must restore the bytes; the ``fixed_marker`` must see the check before and not after.
Skipped until the manifest exists. No upstream file is copied.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from apply_helpers import (
    REAL_MANIFEST,
    make_repo,
    postimage_from_patch,
    preimage_from_patch,
    snapshot,
    version_h,
    write_manifest,
)
from deeplab_nnapi.patching.manifest import load_manifest
from deeplab_nnapi.patching.select import select_for_tree
from deeplab_nnapi.patching.tfversion import TreeVersion
from packaging.version import Version

VERSION_H = "tensorflow/core/public/version.h"
_VERSION_IN_TEXT = re.compile(r"(?:\b|(?<=\bv)|(?<=\br))(2\.\d+(?:\.\d+)?)(?:-?rc\d+)?\b")


def _manifest():
    return load_manifest(REAL_MANIFEST) if REAL_MANIFEST.exists() else None


def _params(kind: str):
    man = _manifest()
    if man is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="patches/manifest.toml not written yet"))]
    if kind == "patch":
        return [pytest.param(p.name, id=p.name) for p in man.patches]
    # one TF version per distinct specifier: the lowest verified one
    out = []
    for spec in man.supported("tensorflow"):
        p = next(p for p in man.for_target("tensorflow") if p.versions_text == spec)
        out.append(pytest.param(str(_version_for(p)), id=spec))
    return out


def _version_for(patch) -> Version:
    for v in patch.verified_against:
        m = _VERSION_IN_TEXT.search(v)
        if m:
            ver = Version(m.group(1))
            ver = Version(f"{ver.major}.{ver.minor}.{ver.micro}")
            if patch.matches(ver):
                return ver
    for minor in range(0, 60):
        for micro in (0, 1, 2, 3):
            ver = Version(f"2.{minor}.{micro}")
            if patch.matches(ver):
                return ver
    raise AssertionError(f"{patch.name}: no TF 2.x version in {patch.versions}")


def _fixture_tree(tmp_path: Path, patches, version: Version = None) -> Path:
    files = {}
    for p in patches:
        pre = preimage_from_patch(p.path.read_bytes())
        overlap = set(pre) & set(files)
        if overlap:
            pytest.skip(f"several patches of the set modify {sorted(overlap)}; covered per patch")
        files.update(pre)
    if version is not None:
        files[VERSION_H] = version_h(version.major, version.minor, version.micro)
    return make_repo(tmp_path / "tree", files)


def _run(cli, manifest: Path, target: str, tree: Path, version, *extra):
    if target == "tensorflow":
        return cli("--manifest", manifest, "--tf-version", str(version), "--tf-dir", tree, *extra)
    return cli("--manifest", manifest, "--models-dir", tree, *extra)


@pytest.mark.parametrize("name", _params("patch"))
def test_real_patch_changes_exactly_its_lines(cli, tmp_path, name):
    real = _manifest().by_name(name)
    data = real.path.read_bytes()
    version = _version_for(real) if real.target == "tensorflow" else None
    tree = _fixture_tree(tmp_path, [real], version)
    single = write_manifest(
        tmp_path / "patches",
        [
            dict(
                name=real.name,
                target=real.target,
                file=real.file,
                data=data,
                versions=str(real.versions),
                order=real.order,
                touches=list(real.touches),
                fixed_marker=real.fixed_marker,
                sha256=real.sha256,
            )
        ],
    )
    before = snapshot(tree)
    pre, post = preimage_from_patch(data), postimage_from_patch(data)

    if real.fixed_marker:
        for path in pre:
            if re.search(real.fixed_marker, pre[path], re.M):
                break
        else:
            pytest.fail(
                f"{name}: fixed_marker {real.fixed_marker!r} does not match the pre-image: every "
                "tree where the patch fails would be reported as fixed upstream"
            )
        assert not any(re.search(real.fixed_marker, t, re.M) for t in post.values()), (
            f"{name}: fixed_marker still matches after the patch"
        )

    rc, out, err = _run(cli, single, real.target, tree, version, "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]["patches"]
    assert [(p["name"], p["strategy"], p["state"]) for p in rep] == [(name, "clean", "applied")]
    after = snapshot(tree)
    for path, text in post.items():
        assert (tree / path).read_text() == text, f"{name}: {path} differs from the intended post-image"
    changed = {k for k in before["files"] if before["files"][k][0] != after["files"].get(k, (None,))[0]}
    assert changed == set(post), f"{name}: changed {sorted(changed)}"

    rc, out, _ = _run(cli, single, real.target, tree, version, "--json")
    assert rc == 0 and json.loads(out)["trees"][0]["patches"][0]["state"] == "already-applied"
    rc, _, err = _run(cli, single, real.target, tree, version, "--reverse")
    assert rc == 0, err
    assert {k: v[0] for k, v in snapshot(tree)["files"].items()} == {
        k: v[0] for k, v in before["files"].items()
    }


@pytest.mark.parametrize("version", _params("tf-version"))
def test_real_manifest_selects_and_applies_the_tf_variant(cli, tmp_path, version):
    man = _manifest()
    v = Version(version)
    groups = select_for_tree(man, "tensorflow", TreeVersion(v, version, (VERSION_H,)))
    chosen = [g[0] for g in groups]
    tree = _fixture_tree(tmp_path, chosen, v)
    rc, out, err = cli("--manifest", REAL_MANIFEST, "--tf-version", version, "--tf-dir", tree, "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]
    assert [p["name"] for p in rep["patches"]] == [p.name for p in chosen]
    assert {p["state"] for p in rep["patches"]} == {"applied"}


def _models_params():
    out = [
        p
        for p in _params("patch")
        if p.values[0] is None or _manifest().by_name(p.values[0]).target == "models"
    ]
    return out or [
        pytest.param(None, marks=pytest.mark.skip(reason="the manifest has no models patches yet"))
    ]


@pytest.mark.parametrize("name", _models_params())
def test_real_manifest_picks_the_models_variant_that_fits(cli, tmp_path, name):
    man = _manifest()
    real = man.by_name(name)
    groups = select_for_tree(man, "models", None)
    group = next(g for g in groups if real in g)
    tree = _fixture_tree(tmp_path, [real])
    # the other groups (if any) are not in this fixture: run with a manifest of this group only
    entries = [
        dict(
            name=p.name,
            target="models",
            file=p.file,
            data=p.path.read_bytes(),
            versions="",
            order=p.order,
            touches=list(p.touches),
            fixed_marker=p.fixed_marker,
        )
        for p in group
    ]
    single = write_manifest(tmp_path / "patches", entries)
    rc, out, err = cli("--manifest", single, "--models-dir", tree, "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]["patches"][0]
    assert rep["state"] == "applied"
    if rep["name"] != name:
        # an earlier variant also fits this pre-image: it must then produce the same result
        post = postimage_from_patch(real.path.read_bytes())
        assert all((tree / p).read_text() == t for p, t in post.items()), (
            f"variant {rep['name']} was chosen for {name}'s pre-image and gives a different result"
        )


def _pairs():
    man = _manifest()
    if man is None:
        return [
            pytest.param(None, None, marks=pytest.mark.skip(reason="patches/manifest.toml not written yet"))
        ]
    tf = [p for p in man.for_target("tensorflow") if p.layout == "tensorflow"]
    return [
        pytest.param(p.name, q.name, id=f"{p.name}@{q.versions_text}") for p in tf for q in tf if p is not q
    ]


@pytest.mark.parametrize("shape, labelled_as", _pairs())
def test_real_tf_shapes_are_distinct_and_fall_back_across_boundaries(cli, tmp_path, shape, labelled_as):
    """A tree with one shape's text but another release line's version number (a boundary that is off,
    or a fork that backported) gets the variant that fits, never a wrong one."""
    man = _manifest()
    p, q = man.by_name(shape), man.by_name(labelled_as)
    version = _version_for(q)
    tree = _fixture_tree(tmp_path, [p], version)
    rc, out, err = cli("--manifest", REAL_MANIFEST, "--tf-version", str(version), "--tf-dir", tree, "--json")
    assert rc == 0, err
    rep = json.loads(out)["trees"][0]["patches"]
    assert [(r["name"], r["state"]) for r in rep] == [(shape, "applied")]
    if not p.matches(version):  # not one of the variants for this version: found as a fallback, and said so
        assert rep[0]["message"].startswith("fallback:")
    post = postimage_from_patch(p.path.read_bytes())
    assert all((tree / path).read_text() == text for path, text in post.items())
