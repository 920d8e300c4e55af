"""The sources stage (docker/prepare_sources.py) on stand-in trees, the toolchain plan
(docker/toolchain_plan.py) for each layout, and the published weights (table, fetch,
docker/export_stage.py), without TensorFlow."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from deeplab_nnapi import REPO_ROOT
from deeplab_nnapi.export.download import DownloadError
from deeplab_nnapi.export.published import fetch_published, load_published

sys.path.insert(0, str(REPO_ROOT / "tests"))
from stand_in_trees import litert_tree, models_tree, tensorflow_tree  # noqa: E402

DOCKER = REPO_ROOT / "docker"
NDK = {"release": "r21e", "file": "android-ndk-r21e-linux-x86_64.zip", "checksum": "sha1:" + "1" * 40}
LITERT_NDK = {"release": "r26d", "file": "android-ndk-r26d-linux.zip", "checksum": "sha256:" + "2" * 64}
PINS = {"6.1.0": "a" * 64, "7.7.0": "b" * 64}


def _module(name):
    spec = importlib.util.spec_from_file_location(f"deeplab_nnapi_docker_{name}", DOCKER / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(DOCKER))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(DOCKER))
    return mod


plan_mod = _module("toolchain_plan")


def _bazel_workspace(tree: Path, version: str, build_file: str) -> Path:
    tree.mkdir(parents=True, exist_ok=True)
    (tree / ".bazelversion").write_text(version + "\n")
    (tree / "WORKSPACE").write_text("# stand-in\n")
    (tree / "configure").write_text("#!/bin/sh\n")
    (tree / build_file).parent.mkdir(parents=True, exist_ok=True)
    (tree / build_file).write_text('cc_binary(name = "benchmark_model")\n')
    return tree


def _prepare(tmp_path, tf_src, models_src, **extra):
    """The sources stage as the Dockerfile runs it: the trees already copied in from the build context."""
    tf, models = tmp_path / "stage" / "tensorflow", tmp_path / "stage" / "models"
    shutil.copytree(tf_src, tf, symlinks=True)
    shutil.copytree(models_src, models, symlinks=True)
    out = tmp_path / "stage" / "sources.json"
    cmd = [
        sys.executable,
        str(DOCKER / "prepare_sources.py"),
        "--out",
        str(out),
        "--tf-dir",
        str(tf),
        "--tf-local",
        "local-trees/tf",
        "--models-dir",
        str(models),
        "--models-local",
        "local-trees/models",
    ]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", value]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / "tools")),
    )
    return proc, (json.loads(out.read_text()) if out.exists() else None), tf, models


def test_sources_stage_patches_a_local_litert_tree_and_names_it(tmp_path):
    src = _bazel_workspace(litert_tree(tmp_path / "LiteRT"), "7.7.0", "tflite/tools/benchmark/BUILD")
    head = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    models_src = models_tree(tmp_path / "models")
    shutil.rmtree(models_src / ".git")  # an unpacked tree: the commit is the one stated
    proc, sources, tf, models = _prepare(
        tmp_path, src, models_src, models_dir_commit="6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"
    )
    assert proc.returncode == 0, proc.stderr
    t = sources["tensorflow"]
    assert t["origin"] == "build context" and t["name"] == "TF_DIR=local-trees/tf"
    assert t["layout"] == "litert" and t["version"] == "LiteRT 2.0.2" and t["shape"] == "c"
    assert t["commit"] == head and t["commit_source"] == ".git of the tree"
    assert [(p["file"], p["state"]) for p in t["patches"]] == [
        ("litert/shape-c/0001-lite-nnapi-delegate-large-average-pool-windows.patch", "applied")
    ]
    assert t["toolchain"]["bazel_version"] == "7.7.0" and t["toolchain"]["benchmark_build"] is True
    m = sources["models"]
    assert m["commit"] == "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"
    assert m["commit_source"].startswith("--build-arg MODELS_DIR_COMMIT") and len(m["patches"]) == 3
    assert not (tf / ".git").exists() and not (models / ".git").exists(), ".git is dropped after reading it"
    assert before == {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}, (
        "the user's tree is only read"
    )
    assert (
        "prepare_sources: TensorFlow tree TF_DIR=local-trees/tf: litert, version LiteRT 2.0.2" in proc.stderr
    )


def test_sources_stage_takes_a_stated_commit_when_the_tree_has_no_git(tmp_path):
    src = tensorflow_tree(tmp_path / "tf")
    shutil.rmtree(src / ".git")
    proc, sources, _, _ = _prepare(tmp_path, src, models_tree(tmp_path / "models"), tf_dir_commit="d" * 40)
    assert proc.returncode == 0, proc.stderr
    t = sources["tensorflow"]
    assert t["layout"] == "tensorflow" and t["version"] == "2.14.0" and t["commit"] == "d" * 40
    assert t["commit_source"] == "--build-arg TF_DIR_COMMIT (stated, not checked)"
    assert t["toolchain"]["bazel_version"] is None


def test_a_local_tree_with_uncommitted_changes_is_patched_and_says_so(tmp_path):
    """A vendor's working copy: its changes are what gets built (our own copy is patched, so a dirty tree is
    no reason to stop); the report names HEAD and says the tree had local changes."""
    src = tensorflow_tree(tmp_path / "tf")
    (src / "VENDOR_NOTES.txt").write_text("local change\n")
    subprocess.run(["git", "-C", str(src), "add", "VENDOR_NOTES.txt"], check=True)
    proc, sources, _, _ = _prepare(tmp_path, src, models_tree(tmp_path / "models"))
    assert proc.returncode == 0, proc.stderr
    assert sources["tensorflow"]["commit_source"] == ".git of the tree, with uncommitted changes"


def test_sources_stage_stops_when_the_patch_does_not_apply(tmp_path):
    src = tensorflow_tree(tmp_path / "tf")
    delegate = src / "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"
    text = delegate.read_text()  # a fork that rewrote the code around the check: no patch fits
    assert "if (IsQuantized(context->tensors[node->inputs->data[0]].type)) {" in text
    delegate.write_text(
        text.replace(
            "if (IsQuantized(context->tensors[node->inputs->data[0]].type)) {",
            "if (VendorIsQuantized(context, node)) {",
        )
    )
    proc, sources, _, _ = _prepare(tmp_path, src, models_tree(tmp_path / "models"))
    assert proc.returncode == 1 and sources is None, proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("prepare_sources: error: patching TF_DIR=local-trees/tf")
    )


# -- the toolchain plan ---------------------------------------------------------------------------------
def _sources_of(tree: Path, layout: str) -> dict:
    return {
        "tensorflow": {"name": "TF_DIR=t", "layout": layout, "toolchain": plan_mod.describe(tree, layout)}
    }


def test_plan_for_a_litert_tree_is_its_bazel_its_target_and_ndk_r26d(tmp_path):
    tree = _bazel_workspace(tmp_path / "litert", "7.7.0", "tflite/tools/benchmark/BUILD")
    settings = plan_mod.plan(_sources_of(tree, "litert"), PINS, NDK, LITERT_NDK)
    assert settings["BAZEL_VERSION"] == "7.7.0" and settings["BAZEL_SHA256"] == "b" * 64
    assert settings["BENCHMARK_TARGET"] == "//tflite/tools/benchmark:benchmark_model"
    assert settings["BENCHMARK_BINARY"] == "bazel-bin/tflite/tools/benchmark/benchmark_model"
    assert settings["NDK_RELEASE"] == "r26d" and settings["NDK_CHECKSUM"] == LITERT_NDK["checksum"]


def test_plan_for_a_tensorflow_tree_is_its_bazel_and_ndk_r21e(tmp_path):
    tree = _bazel_workspace(tmp_path / "tf", "6.1.0", "tensorflow/lite/tools/benchmark/BUILD")
    settings = plan_mod.plan(_sources_of(tree, "tensorflow"), PINS, NDK, LITERT_NDK)
    assert settings["BENCHMARK_TARGET"] == "//tensorflow/lite/tools/benchmark:benchmark_model"
    assert settings["BAZEL_VERSION"] == "6.1.0" and settings["NDK_RELEASE"] == "r21e"


@pytest.mark.parametrize(
    "setup, layout, fragment",
    [
        (
            lambda t: _bazel_workspace(t, "5.0.0", "tensorflow/lite/tools/benchmark/BUILD"),
            "tensorflow",
            "asks for Bazel 5.0.0 (.bazelversion) but --build-arg BAZEL_PINS pins 6.1.0, 7.7.0: add "
            "5.0.0=<sha256 of bazel-5.0.0-linux-x86_64>",
        ),
        (lambda t: t, "tflite-only", "is a tflite-only tree (no Bazel workspace"),
        (
            lambda t: (
                _bazel_workspace(t, "6.1.0", "tensorflow/lite/tools/benchmark/BUILD"),
                (t / "configure").unlink(),
            ),
            "tensorflow",
            "has no ./configure",
        ),
        (
            lambda t: (
                _bazel_workspace(t, "6.1.0", "tensorflow/lite/tools/benchmark/BUILD"),
                (t / ".bazelversion").unlink(),
            ),
            "tensorflow",
            "has no .bazelversion",
        ),
    ],
)
def test_plan_refuses_in_one_line_naming_what_to_do(tmp_path, setup, layout, fragment):
    tree = tmp_path / "t"
    tree.mkdir()
    setup(tree)
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps(_sources_of(tree, layout)))
    proc = subprocess.run(
        [
            sys.executable,
            str(DOCKER / "toolchain_plan.py"),
            "plan",
            "--sources",
            str(sources),
            "--bazel-pins",
            " ".join(f"{k}={v}" for k, v in PINS.items()),
            "--ndk",
            " ".join(NDK.values()),
            "--litert-ndk",
            " ".join(LITERT_NDK.values()),
            "--out",
            str(tmp_path / "toolchain.env"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and not (tmp_path / "toolchain.env").exists()
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("toolchain_plan: error: toolchain: ") and fragment in lines[0]
    )


def test_plan_file_is_shell_the_toolchain_stage_can_source(tmp_path):
    tree = _bazel_workspace(tmp_path / "litert", "7.7.0", "tflite/tools/benchmark/BUILD")
    env_file = tmp_path / "toolchain.env"
    env_file.write_text(plan_mod.shell(plan_mod.plan(_sources_of(tree, "litert"), PINS, NDK, LITERT_NDK)))
    out = subprocess.run(
        ["bash", "-c", f'. "{env_file}" && echo "$BENCHMARK_TARGET|$NDK_FILE|$NDK_ARGS"'],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert out == "//tflite/tools/benchmark:benchmark_model|android-ndk-r26d-linux.zip|LITERT_ANDROID_NDK_*"


@pytest.mark.realsource
@pytest.mark.parametrize(
    "variable, layout, bazel, target",
    [
        ("LITERT_SOURCE_DIR", "litert", "7.7.0", "//tflite/tools/benchmark:benchmark_model"),
        ("TF_SOURCE_DIR", "tensorflow", None, "//tensorflow/lite/tools/benchmark:benchmark_model"),
    ],
)
def test_plan_of_a_real_tree(variable, layout, bazel, target):
    """Opt-in: what the toolchain stage would do with a real tree (LITERT_SOURCE_DIR=~/src/LiteRT,
    TF_SOURCE_DIR=~/src/tensorflow), with the Dockerfile's own pins. Prints the plan."""
    root = os.environ.get(variable)
    if not root:
        pytest.skip(f"{variable} is not set")
    import re

    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    arg = {m.group(1): m.group(2).strip('"') for m in re.finditer(r"^ARG (\w+)=(.*)$", text, re.M)}
    ndk = {
        "release": arg["ANDROID_NDK_RELEASE"],
        "file": arg["ANDROID_NDK_FILE"],
        "checksum": arg["ANDROID_NDK_CHECKSUM"],
    }
    litert_ndk = {
        "release": arg["LITERT_ANDROID_NDK_RELEASE"],
        "file": arg["LITERT_ANDROID_NDK_FILE"],
        "checksum": arg["LITERT_ANDROID_NDK_CHECKSUM"],
    }
    info = plan_mod.describe(Path(root), layout)
    settings = plan_mod.plan(
        {"tensorflow": {"name": root, "layout": layout, "toolchain": info}},
        plan_mod.parse_pins(arg["BAZEL_PINS"]),
        ndk,
        litert_ndk,
    )
    print(json.dumps({"describe": info, "plan": settings}, indent=1))
    assert settings["BENCHMARK_TARGET"] == target
    assert bazel is None or settings["BAZEL_VERSION"] == bazel


# -- the published weights ------------------------------------------------------------------------------
def test_published_table_pins_eight_files_at_one_commit():
    table = load_published()
    assert table.source == (
        "freedomtan/deeplabv3_tflite_for_nnapi_delegate@a40d77a62f39f2ff86469397298fdf2b18f893c6"
    )
    assert len(table.models) == 8 and len({m.name for m in table.models}) == 8
    assert {m.quantization for m in table.models if "_dummy_" in m.name} == {"dummy"}
    assert {m.quantization for m in table.models if "_dummy_" not in m.name} == {None}
    url = table.url_of(table.models[0])
    assert url == (
        "https://raw.githubusercontent.com/freedomtan/deeplabv3_tflite_for_nnapi_delegate/"
        "a40d77a62f39f2ff86469397298fdf2b18f893c6/pascal_voc_2012/deeplabv3_mnv2_pascal_513_os8_quant.tflite"
    )


def test_published_table_matches_the_reference_checksums(reference_models):
    sums = dict(
        reversed(line.split())
        for line in (reference_models[0].parent / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    assert {m.name: m.sha256 for m in load_published().models} == sums
    assert {m.name: m.size for m in load_published().models} == {
        p.name: p.stat().st_size for p in reference_models
    }


def test_fetch_from_a_local_directory_checks_every_file(tmp_path, reference_models):
    local = tmp_path / "local"
    local.mkdir()
    for m in reference_models:
        shutil.copyfile(m, local / m.name)
    got = fetch_published(tmp_path / "w", local_dir=local)
    assert len(got) == 8 and all(p.read_bytes() == (local / p.name).read_bytes() for _, p in got)
    bad = local / reference_models[0].name
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match=f"{bad.name}: sha256 .* but freedomtan/"):
        fetch_published(tmp_path / "w2", local_dir=local)
    bad.unlink()
    with pytest.raises(DownloadError, match=f"no {bad.name} \\(a local directory must hold all 8 files"):
        fetch_published(tmp_path / "w3", local_dir=local)


def test_export_stage_runs_one_weights_from_export_per_published_model(tmp_path, reference_models):
    """docker/export_stage.py --weights published with a stand-in export_models.py that records its arguments:
    each model goes through --weights-from, the dummy ones with --quantization dummy; the children see the
    models tree's commit; the record names the source; no checkpoint is involved."""
    stage = _module("export_stage")
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "export_models.py"
    fake.write_text(
        textwrap.dedent(f"""\
        import json, os, sys
        with open({str(log)!r}, "a") as f:
            commit = os.environ.get("DEEPLAB_NNAPI_MODELS_COMMIT")
            f.write(json.dumps({{"argv": sys.argv[1:], "commit": commit}}) + "\\n")
        out = sys.argv[sys.argv.index("--out") + 1]
        name = os.path.basename(sys.argv[sys.argv.index("--weights-from") + 1])
        open(os.path.join(out, name), "wb").write(b"TFL3")
        """)
    )
    stage.EXPORT[:] = [sys.executable, str(fake)]
    local = tmp_path / "local"
    local.mkdir()
    for m in reference_models:
        (local / m.name).symlink_to(m)
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"models": {"commit": "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"}}))
    code = stage.main(
        [
            "--weights",
            "published",
            "--models-dir",
            str(tmp_path / "models"),
            "--sources",
            str(sources),
            "--out",
            str(tmp_path / "out"),
            "--record",
            str(tmp_path / "weights.json"),
            "--weights-dir",
            str(tmp_path / "w"),
            "--local-dir",
            str(local),
            "--local-name",
            "local-trees/weights",
            "pascal_train_aug_8bit=",
        ]
    )
    assert code == 0
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == 8 and {r["commit"] for r in runs} == {"6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"}
    dummy = [r["argv"] for r in runs if "_dummy_" in r["argv"][r["argv"].index("--weights-from") + 1]]
    assert len(dummy) == 4 and all(a[a.index("--quantization") + 1] == "dummy" for a in dummy)
    assert all("--quantization" not in r["argv"] for r in runs if r["argv"] not in dummy)
    record = json.loads((tmp_path / "weights.json").read_text())
    assert record["weights"] == "published" and record["source"].endswith(
        "@a40d77a62f39f2ff86469397298fdf2b18f893c6"
    )
    assert record["from"] == "build context: local-trees/weights" and all(r["ok"] for r in record["models"])
    assert not (tmp_path / "checkpoints").exists()


def test_manifest_models_commit_comes_from_the_sources_stage_when_the_tree_has_no_git(tmp_path, monkeypatch):
    from deeplab_nnapi.export.pipeline import models_commit

    plain = tmp_path / "models"
    plain.mkdir()
    assert models_commit(plain) is None
    monkeypatch.setenv("DEEPLAB_NNAPI_MODELS_COMMIT", "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b")
    assert models_commit(plain) == "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"
    repo = models_tree(tmp_path / "git-models")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert models_commit(repo) == head.stdout.strip(), "a checkout's own HEAD wins"
