"""The engine choice (Docker-compatible engine, else buildah, else one line), the buildah path, local trees in
the build context, the seconds per stage, and the ci scripts' argument handling: all without building
(stand-in executables from buildah_fakes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from buildah_fakes import calls, env_with, fake_bin
from deeplab_nnapi import REPO_ROOT
from deeplab_nnapi.container import buildah
from deeplab_nnapi.container.context import LocalDirs, make_context
from deeplab_nnapi.container.engine import BuildFailed, EngineUnavailable, choose_engine
from deeplab_nnapi.container.stages import StageTimer
from deeplab_nnapi.errors import UsageError

sys.path.insert(0, str(REPO_ROOT / "tests"))
from stand_in_trees import litert_tree, models_tree, tensorflow_tree  # noqa: E402

BUILD_IMAGE = REPO_ROOT / "tools" / "build_image.py"


# -- choosing the engine ----------------------------------------------------------------------------------
def _no_engine(url=None):
    raise EngineUnavailable(
        "no container engine reachable: DOCKER_HOST is not set and none of "
        "/var/run/docker.sock exists (start Docker, or Podman's API service, or pass --engine-url)"
    )


def test_auto_takes_the_docker_compatible_engine_when_it_answers():
    engine = choose_engine(
        "auto", connect_fn=lambda url: "client", find_buildah_fn=lambda: "/usr/bin/buildah", env={}
    )
    assert engine.kind == "docker" and engine.client == "client"


def test_auto_falls_back_to_buildah_when_no_engine_answers():
    engine = choose_engine("auto", connect_fn=_no_engine, find_buildah_fn=lambda: "/usr/bin/buildah", env={})
    assert engine.kind == "buildah" and engine.exe == "/usr/bin/buildah"
    assert "DOCKER_HOST is not set" in engine.why


def test_auto_without_either_says_in_one_line_how_to_get_one():
    with pytest.raises(EngineUnavailable) as err:
        choose_engine("auto", connect_fn=_no_engine, find_buildah_fn=lambda: None, env={})
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == 2
    assert text.startswith("no container engine: no Docker-compatible engine answers (DOCKER_HOST is not set")
    assert "buildah is not installed" in text and "apt-get install buildah" in text
    assert "https://docs.docker.com/engine/install/debian/" in text


@pytest.mark.parametrize(
    "url, env", [("tcp://127.0.0.1:9", {}), (None, {"DOCKER_HOST": "unix:///nope.sock"})]
)
def test_a_named_engine_must_answer_no_fallback(url, env):
    with pytest.raises(EngineUnavailable):
        choose_engine("auto", url, connect_fn=_no_engine, find_buildah_fn=lambda: "/usr/bin/buildah", env=env)


def test_forced_engines():
    with pytest.raises(EngineUnavailable, match=r"^buildah not found \(apt-get install buildah\)$"):
        choose_engine("buildah", find_buildah_fn=lambda: None, env={})
    with pytest.raises(EngineUnavailable):
        choose_engine("docker", connect_fn=_no_engine, find_buildah_fn=lambda: "/usr/bin/buildah", env={})
    assert choose_engine("buildah", find_buildah_fn=lambda: "/b", env={}).kind == "buildah"
    with pytest.raises(UsageError, match="--engine 'podman'"):
        choose_engine("podman", env={})


# -- buildah --------------------------------------------------------------------------------------------
def test_buildah_command_line(tmp_path):
    cmd = buildah.command(
        "buildah",
        tmp_path,
        dockerfile="docker/Dockerfile",
        target="proof",
        build_args={"TF_DIR": "local-trees/tf"},
        tag="t:1",
        pull=False,
        output=tmp_path / "o",
        env={},
    )
    assert cmd[:5] == ["buildah", "bud", "--format", "docker", "--layers=false"]
    assert "--pull=false" in cmd and ["--isolation", "chroot"] == cmd[6:8]
    assert cmd[cmd.index("--target") + 1] == "proof" and cmd[cmd.index("-t") + 1] == "t:1"
    assert cmd[cmd.index("--build-arg") + 1] == "TF_DIR=local-trees/tf"
    assert f"type=local,dest={tmp_path / 'o'}" in cmd and cmd[-1] == str(tmp_path)
    again = buildah.command(
        "buildah",
        tmp_path,
        dockerfile="docker/Dockerfile",
        target="check",
        build_args={},
        tag=None,
        pull=True,
        output=None,
        env={"BUILDAH_ISOLATION": "oci", "STORAGE_DRIVER": "vfs"},
    )
    assert "--isolation" not in again and "--pull=always" in again and "--output" not in again
    assert again[:4] == ["buildah", "--storage-driver", "vfs", "bud"], "buildah does not read STORAGE_DRIVER"


def test_buildah_build_replaces_the_output_only_on_success(tmp_path):
    log = tmp_path / "calls.log"
    exe = str(fake_bin(tmp_path / "bin", "buildah") / "buildah")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous")
    os.environ["FAKE_LOG"] = str(log)
    try:
        os.environ["FAKE_FAIL"] = "preflight: error: WEIGHTS=checkpoint needs --build-arg CKPT_X=<sha256>"
        with pytest.raises(BuildFailed) as err:
            buildah.build(exe, REPO_ROOT, dockerfile="docker/Dockerfile", target="proof", output=out)
        assert str(err.value) == (
            "build of target 'proof' failed: preflight: error: WEIGHTS=checkpoint needs "
            "--build-arg CKPT_X=<sha256>"
        )
        assert (out / "old.txt").read_text() == "previous" and len(list(tmp_path.glob(".out.*"))) == 0
        del os.environ["FAKE_FAIL"]
        lines = []
        result = buildah.build(
            exe, REPO_ROOT, dockerfile="docker/Dockerfile", target="proof", output=out, on_line=lines.append
        )
    finally:
        os.environ.pop("FAKE_FAIL", None)
        os.environ.pop("FAKE_LOG", None)
    assert not (out / "old.txt").exists() and (out / "report" / "report.md").is_file()
    assert sorted(str(f.relative_to(out)) for f in result.files) == [
        "host/nnapi_probe",
        "models/m.tflite",
        "models/manifest.json",
        "report/report.json",
        "report/report.md",
    ]
    assert result.image_id == "0123456789abcdef" * 4 and "[3/3] STEP 1/2: FROM parent AS proof" in lines


# -- seconds per stage ----------------------------------------------------------------------------------
def _timed(lines, end):
    t = [0.0]
    timer = StageTimer(clock=lambda: t[0])
    for when, line in lines:
        t[0] = when
        timer.feed(line)
    t[0] = end
    timer.finish()
    return timer


def test_stage_timer_reads_the_classic_builders_steps():
    timer = _timed([(0, "Step 1/9 : FROM debian@sha256:00 AS base"), (1, " ---> Running in 12"),
                    (5, "Step 4/9 : FROM base AS inputs"), (7, "Step 6/9 : RUN python3 preflight.py"),
                    (8, "preflight: inputs ok"), (9, "Step 7/9 : FROM scratch")], end=20)
    assert timer.table() == [("base", 5.0), ("inputs", 4.0), ("stage 3", 11.0)]
    assert timer.lines()[-1].split() == ["total", "20.0", "s"]


def test_stage_timer_follows_buildahs_interleaved_stages():
    """buildah runs one stage at a time but switches when one waits for another (COPY --from): a stage's
    seconds are those while its steps ran, and a RUN's unprefixed output belongs to the stage of the RUN."""
    timer = _timed([
        (0, "[1/4] STEP 1/2: FROM localhost/base AS base"),
        (3, "[3/4] STEP 1/3: FROM 1c82 AS sources"),
        (4, "[3/4] STEP 2/3: COPY --from=inputs /a /a"),   # waits for inputs
        (4, "[2/4] STEP 1/2: FROM 1c82 AS inputs"),
        (5, "[2/4] STEP 2/2: RUN python3 preflight.py"),
        (7, "preflight: inputs ok"),
        (8, "--> 15f0b18f0ff"),
        (9, "[3/4] STEP 3/3: RUN prepare_sources"),        # sources resumes
        (30, "prepare_sources: done"),
        (31, "[4/4] STEP 1/1: FROM scratch"),
        (32, "[3/4] STEP 3/3: RUN more"),
        (33, "[4/4] COMMIT localhost/deeplab-nnapi:proof"),   # the target's commit and output
    ], end=40)
    assert timer.table() == [("base", 3.0), ("sources", 24.0), ("inputs", 5.0), ("stage 4", 8.0)]
    assert sum(s for _, s in timer.table()) == 40.0


# -- local trees in the build context -------------------------------------------------------------------
def test_local_trees_go_into_a_temporary_context_without_git_and_with_their_commit(tmp_path):
    tf = litert_tree(tmp_path / "LiteRT")
    models = models_tree(tmp_path / "models")
    (models / "research" / "deeplab" / "export_model.py").parent.mkdir(parents=True, exist_ok=True)
    (models / "research" / "deeplab" / "export_model.py").touch()
    before = {p: p.read_bytes() for p in tf.rglob("*") if p.is_file() and ".git" not in p.parts}
    head = subprocess.run(
        ["git", "-C", str(tf), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    with make_context(REPO_ROOT, LocalDirs(tf=tf, models=models), workdir=tmp_path) as ctx:
        assert ctx.temporary and (ctx.path / "docker" / "Dockerfile").is_file()
        assert (
            ctx.build_args["TF_DIR"] == "local-trees/tf"
            and ctx.build_args["MODELS_DIR"] == "local-trees/models"
        )
        assert ctx.build_args["TF_DIR_COMMIT"] == head
        assert (
            ctx.path / "local-trees" / "tf" / "tflite" / "delegates" / "nnapi" / "nnapi_delegate.cc"
        ).is_file()
        assert not (ctx.path / "local-trees" / "tf" / ".git").exists()
        assert (
            not (ctx.path / ".git").exists() and not (ctx.path / "local-trees" / "models" / ".git").exists()
        )
        path = ctx.path
    assert not path.exists(), "the temporary context is removed"
    assert before == {p: p.read_bytes() for p in tf.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_no_local_tree_builds_from_the_repository_itself():
    ctx = make_context(REPO_ROOT, LocalDirs())
    assert ctx.path == REPO_ROOT and not ctx.temporary and ctx.build_args == {}


@pytest.mark.parametrize(
    "make, option, fragment",
    [
        (lambda p: p, "--tf-dir", "no NNAPI delegate"),
        (lambda p: p / "missing", "--tf-dir", "not a directory"),
        (lambda p: p, "--models-dir", "no research/deeplab/export_model.py"),
        (lambda p: p, "--weights-dir", "no .tflite files"),
    ],
)
def test_bad_local_directories_are_one_line_before_any_engine(tmp_path, make, option, fragment):
    log = tmp_path / "calls.log"
    bin_dir = fake_bin(tmp_path / "bin", "buildah")
    proc = subprocess.run(
        [sys.executable, str(BUILD_IMAGE), "--engine", "buildah", option, str(make(tmp_path))],
        capture_output=True,
        text=True,
        env=env_with(bin_dir, log),
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"build_image: error: {option} ") and fragment in lines[0]
    assert calls(log) == []


def test_a_directory_named_twice_is_refused(tmp_path):
    tf = tensorflow_tree(tmp_path / "tf")
    with pytest.raises(UsageError, match="--tf-dir and --build-arg TF_DIR both name"):
        make_context(REPO_ROOT, LocalDirs(tf=tf), given={"TF_DIR": "x"})


# -- the CLI with buildah -------------------------------------------------------------------------------
def test_cli_builds_with_buildah_when_no_engine_answers(tmp_path):
    """No DOCKER_HOST, no socket (the docker SDK may be missing too): buildah builds, with the local trees in
    a temporary context, the output copied out and the seconds per stage printed."""
    log = tmp_path / "calls.log"
    bin_dir = fake_bin(tmp_path / "bin", "buildah")
    tf, models = litert_tree(tmp_path / "LiteRT"), models_tree(tmp_path / "models")
    (models / "research" / "deeplab" / "export_model.py").parent.mkdir(parents=True, exist_ok=True)
    (models / "research" / "deeplab" / "export_model.py").touch()
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "a.tflite").write_bytes(b"TFL3")
    out = tmp_path / "out"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import deeplab_nnapi.container.engine as e; "
        "e.DEFAULT_SOCKETS = ('/nonexistent/docker.sock',); from deeplab_nnapi.cli.build_image import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(REPO_ROOT / "tools"),
            "--target",
            "proof",
            "--output",
            str(out),
            "--tf-dir",
            str(tf),
            "--models-dir",
            str(models),
            "--weights-dir",
            str(weights),
            "--build-arg",
            "BASE_IMAGE=localhost/base:1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env_with(bin_dir, log),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["engine"] == "buildah" and summary["target"] == "proof" and len(summary["files"]) == 5
    assert [s["stage"] for s in summary["stages"]] == ["base", "inputs", "proof"]
    (bud,) = [c for c in calls(log) if "bud" in c]
    args = dict(bud[i + 1].split("=", 1) for i, a in enumerate(bud) if a == "--build-arg")
    assert args["TF_DIR"] == "local-trees/tf" and args["MODELS_DIR"] == "local-trees/models"
    assert args["WEIGHTS_DIR"] == "local-trees/weights" and args["BASE_IMAGE"] == "localhost/base:1"
    assert len(args["TF_DIR_COMMIT"]) == 40 and len(args["MODELS_DIR_COMMIT"]) == 40
    assert "seconds per stage (buildah)" in proc.stderr
    assert (out / "report" / "report.md").is_file()
    assert not Path(bud[-1]).exists(), "the temporary context is gone"


def test_cli_output_needs_a_target_with_files(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BUILD_IMAGE), "--target", "verify", "--output", "out"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--output copies the artifacts or proof stage" in proc.stderr


# -- ci/build_image.sh: the engine choice ----------------------------------------------------------------
def _ci(script, tmp_path, bins, **extra):
    log = tmp_path / "calls.log"
    bin_dir = fake_bin(tmp_path / "bin", *bins)
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "ci" / script)],
        capture_output=True,
        text=True,
        env=env_with(bin_dir, log, OUT=str(tmp_path / "out"), **extra),
        timeout=120,
    )
    return proc, calls(log)


def test_ci_build_image_uses_docker_when_it_answers(tmp_path):
    proc, log = _ci("build_image.sh", tmp_path, ["docker", "buildah"], FAKE_DOCKER_UP="1")
    assert proc.returncode == 0, proc.stderr
    builds = [c for c in log if c[:2] == ["docker", "build"]]
    assert [c[c.index("--target") + 1] for c in builds] == ["check", "artifacts"]
    assert not any(c[0] == "buildah" for c in log)
    assert not any("--build-arg" in c for c in builds), "the main job passes no build-arg"


def test_ci_build_image_falls_back_to_buildah(tmp_path):
    proc, log = _ci("build_image.sh", tmp_path, ["docker", "buildah"])  # docker installed, not answering
    assert proc.returncode == 0, proc.stderr
    buds = [c for c in log if c[0] == "buildah" and "bud" in c]
    assert [c[c.index("--target") + 1] for c in buds] == ["check", "artifacts"]
    assert any(a.startswith("type=local,dest=") for a in buds[1]) and "--isolation" in buds[1]
    assert "(buildah)" in proc.stdout and not any("--build-arg" in c for c in buds)


def test_ci_build_image_without_an_engine_is_one_line(tmp_path):
    proc, log = _ci("build_image.sh", tmp_path, [])
    assert proc.returncode == 2 and log == []
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "install Docker" in lines[0] and "apt-get install buildah" in lines[0]


# -- ci/build_offline_image.sh: argument handling ---------------------------------------------------------
@pytest.mark.parametrize(
    "env, fragment",
    [
        ({}, "TF_DIR is not set"),
        ({"TF_DIR": "/nonexistent"}, "TF_DIR=/nonexistent is not a directory"),
        ({"TF_DIR": "."}, "MODELS_DIR is not set"),
        (
            {"TF_DIR": ".", "MODELS_DIR": ".", "WEIGHTS_DIR": "/nonexistent"},
            "WEIGHTS_DIR=/nonexistent is not a dir",
        ),
        (
            {"TF_DIR": ".", "MODELS_DIR": ".", "WEIGHTS_DIR": ".", "TARGET": "toolchain"},
            "TARGET=toolchain needs GitHub or Google downloads",
        ),
    ],
)
def test_offline_script_refuses_bad_arguments_in_one_line(tmp_path, env, fragment):
    proc, log = _ci("build_offline_image.sh", tmp_path, ["buildah", "debootstrap"], **env)
    assert proc.returncode == 2 and log == []
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("build_offline_image: error: ") and fragment in lines[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the script runs buildah as root")
def test_offline_script_drives_build_image_with_buildah_and_the_local_trees(tmp_path):
    tf, models = litert_tree(tmp_path / "LiteRT"), models_tree(tmp_path / "models")
    (models / "research" / "deeplab" / "export_model.py").parent.mkdir(parents=True, exist_ok=True)
    (models / "research" / "deeplab" / "export_model.py").touch()
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "a.tflite").write_bytes(b"TFL3")
    proc, log = _ci(
        "build_offline_image.sh",
        tmp_path,
        ["buildah", "debootstrap"],
        TF_DIR=str(tf),
        MODELS_DIR=str(models),
        WEIGHTS_DIR=str(weights),
        PYTHON=sys.executable,
        MODELS_DIR_COMMIT="6fb5646f18d7173dd08a576a819a8dc9b36a6d8b",
    )
    assert proc.returncode == 0, proc.stderr
    (bud,) = [c for c in log if c[0] == "buildah" and "bud" in c]
    assert bud[bud.index("--target") + 1] == "proof"
    args = [bud[i + 1] for i, a in enumerate(bud) if a == "--build-arg"]
    assert (
        "TF_DIR=local-trees/tf" in args
        and "MODELS_DIR_COMMIT=6fb5646f18d7173dd08a576a819a8dc9b36a6d8b" in args
    )
    assert any(a.startswith("BASE_IMAGE=localhost/deeplab-nnapi-base:bookworm-") for a in args)
    assert any(c[:2] == ["buildah", "inspect"] or "inspect" in c for c in log), "the base image is looked up"
    assert any("rmi" in c for c in log), "the image is removed afterwards"
    assert "seconds per stage" in proc.stderr and "# report" in proc.stdout
    assert (tmp_path / "out" / "host" / "nnapi_probe").is_file()


def test_a_checkout_with_local_changes_passes_no_commit(tmp_path):
    tf = litert_tree(tmp_path / "LiteRT")
    delegate = tf / "tflite" / "delegates" / "nnapi" / "nnapi_delegate.cc"
    delegate.write_text(delegate.read_text() + "// vendor change\n")
    with make_context(REPO_ROOT, LocalDirs(tf=tf), workdir=tmp_path) as ctx:
        assert ctx.build_args == {"TF_DIR": "local-trees/tf"}
        assert (ctx.path / "local-trees/tf/tflite/delegates/nnapi/nnapi_delegate.cc").read_text().endswith(
            "// vendor change\n"), "the working copy is what gets built"
