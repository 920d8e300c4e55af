"""The real TensorFlow patches on the tree layouts users have: TensorFlow trees without a version file (a
tflite-only or trimmed vendor tree), LiteRT trees, and whitespace-changed texts (CRLF checkouts, re-indented
forks). Trees are rebuilt from each patch's own pre-image (see apply_helpers.preimage_from_patch)."""

from __future__ import annotations

import json

import pytest
from apply_helpers import (
    REAL_MANIFEST,
    delegate_file,
    make_repo,
    postimage_from_patch,
    preimage_from_patch,
    snapshot,
    version_h,
)
from deeplab_nnapi.patching.manifest import load_manifest

MAN = load_manifest(REAL_MANIFEST)
TF_PATCHES = [p for p in MAN.for_target("tensorflow") if p.layout == "tensorflow"]
LITERT = [p for p in MAN.for_target("tensorflow") if p.layout == "litert"]


def _bytes(tree):
    return {k: v[0] for k, v in snapshot(tree)["files"].items()}


def _report(cli, tree, version, *extra):
    args = ("--manifest", REAL_MANIFEST, "--tf-version", version, "--tf-dir", tree, "--json")
    rc, out, err = cli(*args, *extra)
    assert out, err
    return rc, json.loads(out)["trees"][0]


@pytest.mark.parametrize("patch", TF_PATCHES, ids=lambda p: p.shape)
def test_versionless_tree_with_2x_gets_the_variant_its_text_has(cli, tmp_path, patch):
    tree = make_repo(tmp_path / "t", preimage_from_patch(patch.path.read_bytes()))
    rc, rep = _report(cli, tree, "2.x")
    assert rc == 0 and rep["layout"] == "tflite-only" and rep["version"] is None
    assert rep["shape"] == patch.shape and [p["name"] for p in rep["patches"]] == [patch.name]
    assert rep["patches"][0]["state"] == "applied"
    assert "chosen by the text" in rep["version_source"]
    for path, text in postimage_from_patch(patch.path.read_bytes()).items():
        assert (tree / path).read_text() == text
    rc, rep = _report(cli, tree, "2.x")
    assert rc == 0 and rep["patches"][0]["state"] == "already-applied"


@pytest.mark.parametrize("patch", TF_PATCHES, ids=lambda p: p.shape)
def test_versionless_tree_trusts_2_14_and_still_patches_any_shape(cli, tmp_path, patch):
    """--tf-version 2.14 on a tree without a version file: 2.14 is trusted (shape c); a text of another
    shape is still found, as a fallback the report names."""
    tree = make_repo(tmp_path / "t", preimage_from_patch(patch.path.read_bytes()))
    before = _bytes(tree)
    rc, rep = _report(cli, tree, "2.14")
    assert rc == 0 and rep["layout"] == "tflite-only" and rep["version"] == "2.14"
    assert "no version file" in rep["version_source"] and "trusted" in rep["version_source"]
    got = rep["patches"][0]
    assert got["name"] == patch.name and got["state"] == "applied" and got["shape"] == patch.shape
    assert (patch.shape == "c") == (not got["message"].startswith("fallback:"))
    rc, _ = _report(cli, tree, "2.14", "--reverse")
    assert rc == 0 and _bytes(tree) == before


BZL = 'LITERT_FULL_VERSION = "1.5.0"\nLITERT_EXPERIMENTAL_VERSION = "2.2.0"\n'


@pytest.mark.parametrize("version_bzl, shown", [(BZL, "LiteRT 1.5.0 (experimental 2.2.0)"), (None, None)])
def test_litert_tree_is_patched_like_a_tensorflow_tree(cli, tmp_path, version_bzl, shown):
    (patch,) = LITERT
    files = preimage_from_patch(patch.path.read_bytes())
    assert list(files) == ["tflite/delegates/nnapi/nnapi_delegate.cc"]
    if version_bzl:
        files["litert/version.bzl"] = version_bzl
    tree = make_repo(tmp_path / "litert", files)
    before = _bytes(tree)
    rc, rep = _report(cli, tree, "2.14")
    assert rc == 0 and rep["layout"] == "litert" and rep["version"] == shown
    assert "not matched" in rep["version_source"]
    assert [(p["name"], p["state"], p["shape"]) for p in rep["patches"]] == [(patch.name, "applied", "c")]
    for path, text in postimage_from_patch(patch.path.read_bytes()).items():
        assert (tree / path).read_text() == text
    assert _report(cli, tree, "2.x")[1]["patches"][0]["state"] == "already-applied"
    rc, _ = _report(cli, tree, "2.x", "--reverse")
    assert rc == 0 and _bytes(tree) == before


def _shape(name):
    return next(p for p in TF_PATCHES if p.shape == name)


def test_crlf_checkout_is_patched_with_crlf_line_ends(cli, tmp_path):
    patch = _shape("c")
    (path, text), = preimage_from_patch(patch.path.read_bytes()).items()
    crlf = text.replace("\n", "\r\n").encode()
    tree = make_repo(tmp_path / "crlf", {path: crlf, "tensorflow/core/public/version.h": version_h(2, 14, 0)})
    rc, rep = _report(cli, tree, "2.14")
    got = rep["patches"][0]
    assert rc == 0 and (got["strategy"], got["state"]) == ("clean-ignore-whitespace", "applied"), got
    after = (tree / path).read_bytes()
    assert b"65 * 65" in after and after.count(b"\n") == after.count(b"\r\n")  # no bare LF added
    assert _report(cli, tree, "2.14")[1]["patches"][0]["state"] == "already-applied"
    rc, _ = _report(cli, tree, "2.14", "--reverse")
    assert rc == 0 and (tree / path).read_bytes() == crlf


def test_reindented_fork_is_patched_ignoring_whitespace(cli, tmp_path):
    patch = _shape("c")
    (path, text), = preimage_from_patch(patch.path.read_bytes()).items()
    fork = "\n".join(("  " + ln if ln.startswith(" ") else ln) for ln in text.split("\n"))
    tree = make_repo(tmp_path / "fork", {path: fork, "tensorflow/core/public/version.h": version_h(2, 14, 0)})
    rc, rep = _report(cli, tree, "2.14")
    got = rep["patches"][0]
    assert rc == 0 and got["strategy"] == "clean-ignore-whitespace" and "whitespace differs" in got["message"]
    assert "65 * 65" in (tree / path).read_text()
    assert _report(cli, tree, "2.14")[1]["patches"][0]["state"] == "already-applied"


@pytest.mark.parametrize("shape", ["a", "b0", "b", "c"])
def test_a_text_without_the_check_is_fixed_upstream_with_no_shape(cli, tmp_path, shape):
    """TF 1.13/1.14 and forks that dropped the check: nothing to do, and no shape is claimed for the text."""
    patch = _shape(shape)
    (path, gone), = delegate_file(patch.path.read_bytes(), drop_check=True).items()
    tree = make_repo(tmp_path / "gone", {path: gone})
    before = _bytes(tree)
    rc, rep = _report(cli, tree, "2.x")
    got = rep["patches"][0]
    assert rc == 0 and (got["state"], got["shape"], rep["shape"]) == ("fixed-upstream", None, None)
    assert _bytes(tree) == before


@pytest.mark.parametrize(
    "how, why",
    [
        ("neutered", "a trace of the check"),  # the comparison replaced by `true`: the message is still there
        ("other-limit", "a trace of the check"),  # a fork's own limit (1024): DeepLab's pool is still refused
        ("cut", "looks incomplete"),  # the file cut short before the check
        ("no-case", "code the check lives in is not there"),  # not a delegate text at all
    ],
)
def test_fixed_upstream_needs_evidence(cli, tmp_path, how, why):
    """fixed-upstream is a claim about the text: anything short of a complete delegate text without any
    trace of the check is a conflict naming why (never fixed-upstream, never a change)."""
    patch = _shape("c")
    (path, text), = delegate_file(patch.path.read_bytes()).items()
    comparison = "builtin->filter_width * builtin->filter_height <= 256"
    text = {
        "neutered": text.replace(comparison, "true"),
        "other-limit": text.replace("<= 256", "<= 1024"),
        "cut": text[: text.index(comparison)],
        "no-case": "// an empty file\n",
    }[how]
    tree = make_repo(tmp_path / how, {path: text})
    before = _bytes(tree)
    rc, rep = _report(cli, tree, "2.x")
    got = rep["patches"][-1]
    assert rc == 1 and got["state"] == "conflict", got
    assert why in got["message"] and "not fixed upstream either" in got["message"]
    assert _bytes(tree) == before
