"""Reading a TF tree's version in every upstream format, and matching --tf-version against it."""

from __future__ import annotations

import pytest
from apply_helpers import version_h
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.tfversion import parse_request, read_tree_version
from packaging.version import Version


def tree_with(tmp_path, header=None, bzl=None, default_bzl=None):
    root = tmp_path / "tf"
    for rel, text in (
        ("tensorflow/core/public/version.h", header),
        ("tensorflow/tf_version.bzl", bzl),
        ("tensorflow/tf_version.default.bzl", default_bzl),
    ):
        if text is not None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    root.mkdir(exist_ok=True)
    return root


@pytest.mark.parametrize(
    "suffix, text, pep440, release",
    [
        ("", "2.4.1", "2.4.1", "2.4.1"),
        ("-rc0", "2.5.0-rc0", "2.5.0rc0", "2.5.0"),
        ("-rc1", "2.5.0-rc1", "2.5.0rc1", "2.5.0"),
        ("-rc.1", "2.5.0-rc.1", "2.5.0rc1", "2.5.0"),
        ("-alpha", "2.5.0-alpha", "2.5.0a0", "2.5.0"),
        ("-beta.1", "2.5.0-beta.1", "2.5.0b1", "2.5.0"),
        ("-dev20210101", "2.5.0-dev20210101", "2.5.0.dev20210101", "2.5.0"),
    ],
)
def test_version_h_with_suffix_variants(tmp_path, suffix, text, pep440, release):
    numbers = [int(x) for x in text.split("-")[0].split(".")]
    tv = read_tree_version(tree_with(tmp_path, header=version_h(*numbers, suffix=suffix)))
    assert tv.text == text
    assert tv.version == Version(pep440)
    assert tv.release == Version(release)
    assert tv.sources == ("tensorflow/core/public/version.h",)


def test_version_h_old_style_suffix_in_patch_number(tmp_path):
    header = (
        "#define TF_MAJOR_VERSION 2\n#define TF_MINOR_VERSION 0\n#define TF_PATCH_VERSION 0rc0\n"
        '#define TF_VERSION_SUFFIX ""\n'
    )
    tv = read_tree_version(tree_with(tmp_path, header=header))
    assert tv.version == Version("2.0.0rc0") and tv.release == Version("2.0.0")


def test_tf_version_bzl_only(tmp_path):
    bzl = 'load("//x:y.bzl", "Z")\n\n# comment\nTF_VERSION = "2.20.0"\nMAJOR_VERSION, MINOR_VERSION = 1, 2\n'
    tv = read_tree_version(tree_with(tmp_path, bzl=bzl))
    assert tv.text == "2.20.0" and tv.sources == ("tensorflow/tf_version.bzl",)


def test_tf_version_bzl_with_suffix_from_default_bzl(tmp_path):
    tv = read_tree_version(
        tree_with(
            tmp_path,
            bzl='TF_VERSION = "2.19.0"\n',
            default_bzl='VERSION_SUFFIX = ""\nSEMANTIC_VERSION_SUFFIX = "-rc0"\n',
        )
    )
    assert tv.text == "2.19.0-rc0" and tv.version == Version("2.19.0rc0")


def test_both_files_agree(tmp_path):
    tv = read_tree_version(tree_with(tmp_path, header=version_h(2, 18, 0), bzl='TF_VERSION = "2.18.0"\n'))
    assert tv.text == "2.18.0"
    assert tv.sources == ("tensorflow/core/public/version.h", "tensorflow/tf_version.bzl")


def test_version_h_without_literal_numbers_defers_to_bzl(tmp_path):
    header = (
        '#include "tensorflow/core/public/release_version.h"\n'
        "#define TF_MAJOR_VERSION TF_VERSION_MAJOR_GENERATED\n"
    )
    tv = read_tree_version(tree_with(tmp_path, header=header, bzl='TF_VERSION = "2.21.0"\n'))
    assert tv.text == "2.21.0" and tv.sources == ("tensorflow/tf_version.bzl",)


def test_both_files_disagree_is_an_error_naming_both(tmp_path):
    with pytest.raises(UsageError) as exc:
        read_tree_version(tree_with(tmp_path, header=version_h(2, 17, 0), bzl='TF_VERSION = "2.18.0"\n'))
    msg = str(exc.value)
    assert "2.17.0" in msg and "2.18.0" in msg and "version.h" in msg and "tf_version.bzl" in msg


def test_neither_file_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="cannot tell the TensorFlow version: neither"):
        read_tree_version(tree_with(tmp_path))


def test_unreadable_suffix_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="unreadable TensorFlow version"):
        read_tree_version(tree_with(tmp_path, header=version_h(2, 4, 0, suffix="-weird")))


@pytest.mark.parametrize(
    "request_text, tree_text, ok",
    [
        ("2.x", "2.4.1", True),
        ("2", "2.11.0", True),
        ("2.X", "2.0.0", True),
        ("2.*", "2.3.0", True),
        ("2.4", "2.4.1", True),
        ("2.4", "2.4.0-rc0", True),
        ("2.4", "2.5.0", False),
        ("2.4", "2.14.0", False),
        ("2.4.1", "2.4.1", True),
        ("2.4.1", "2.4.0", False),
        ("2.5.0", "2.5.0-rc1", True),
        ("2.5.0-rc1", "2.5.0-rc1", True),
        ("2.5.0rc1", "2.5.0-rc1", True),
        ("2.5.0-rc1", "2.5.0-rc0", False),
        ("2.5.0-rc1", "2.5.0", False),
        ("v2.4.1", "2.4.1", True),
    ],
)
def test_request_matching(tmp_path, request_text, tree_text, ok):
    numbers, _, suffix = tree_text.partition("-")
    tv = read_tree_version(
        tree_with(
            tmp_path, header=version_h(*map(int, numbers.split(".")), suffix="-" + suffix if suffix else "")
        )
    )
    assert parse_request(request_text).matches(tv) is ok


@pytest.mark.parametrize("bad", ["", "x", "2.", "2.x.1", "2.4.1.7", "1.15", "3.0", "2.4-rc1", "2.4.1-foo"])
def test_bad_requests(bad):
    with pytest.raises(UsageError):
        parse_request(bad)
