"""tools/build_image.py: one-line errors with exit 2, and a full run against a fake engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from deeplab_nnapi import REPO_ROOT
from deeplab_nnapi.cli import build_image

SCRIPT = REPO_ROOT / "tools" / "build_image.py"


def run_cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("build_image: error: ") and "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert proc.stdout == ""


def test_no_engine_at_docker_host_is_exit_2_one_line():
    proc = run_cli("--output", "out", env_extra={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_line_error(proc, "no container engine reachable", "DOCKER_HOST", "/nonexistent/docker.sock")


def test_no_engine_anywhere_is_exit_2_one_line(monkeypatch, capsys):
    """No Docker-compatible engine and no buildah: one line saying how to get either."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr("deeplab_nnapi.container.engine.DEFAULT_SOCKETS", ("/nonexistent/docker.sock",))
    monkeypatch.setattr("deeplab_nnapi.container.buildah.find_buildah", lambda env=None: None)
    assert build_image.main(["--target", "check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["build_image: error: no container engine: no Docker-compatible engine answers "
                   "(DOCKER_HOST is not set and none of /nonexistent/docker.sock exists (start Docker, or "
                   "Podman's API service, or pass --engine-url)) and buildah is not installed: install "
                   "Docker (https://docs.docker.com/engine/install/debian/) or buildah (apt-get install "
                   "buildah)"]


def test_engine_url_that_is_not_answering_is_exit_2(tmp_path):
    proc = run_cli("--engine-url", "tcp://127.0.0.1:9", "--target", "check")
    # Either the SDK is missing (CI installs no `container` extra) or the port refuses: one line, exit 2.
    assert_one_line_error(proc)
    assert "docker SDK is not installed" in proc.stderr or "no container engine answering" in proc.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--build-arg", "NOEQUALS"], "--build-arg 'NOEQUALS': expected NAME=VALUE"),
    (["--target", "check", "--output", "out"], "--output copies the artifacts or proof stage"),
    (["--engine", "buildah", "--engine-url", "tcp://h:1"], "--engine-url names a Docker-compatible engine"),
    (["--tf-dir", "/nonexistent"], "--tf-dir /nonexistent: not a directory"),
    (["--dockerfile", "nope/Dockerfile"], "no Dockerfile at"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_usage_is_exit_2_one_line_before_any_engine_is_contacted(args, fragment):
    proc = run_cli(*args, env_extra={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_line_error(proc, fragment)


def test_full_run_with_a_fake_engine_copies_artifacts_and_prints_json(fake_client, monkeypatch, tmp_path,
                                                                      capsys):
    seen = {}

    def fake_connect(url):
        seen["url"] = url
        return fake_client

    monkeypatch.setattr("deeplab_nnapi.container.engine.connect", fake_connect)
    out = tmp_path / "out"
    code = build_image.main(["--output", str(out), "--build-arg", "TF_TAG=v2.18.0", "--build-arg",
                             "BASE_IMAGE=localhost/base:1", "--engine-url", "tcp://engine:2375", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["target"] == "artifacts" and summary["tag"] == "deeplab-nnapi:artifacts"
    assert summary["image_id"] == "sha256:feedbeef" and len(summary["files"]) == 7
    assert summary["engine"] == "docker" and [s["stage"] for s in summary["stages"]] == ["stage 1"]
    assert seen["url"] == "tcp://engine:2375"
    build_args = fake_client.api.build_kwargs["buildargs"]
    assert build_args == {"TF_TAG": "v2.18.0", "BASE_IMAGE": "localhost/base:1"}
    assert "Step 1/3 : FROM scratch" in captured.err, "the build output is streamed to stderr"
    assert (out / "host" / "nnapi_probe").read_bytes() == b"ELF-probe"


def test_failed_build_is_exit_1_one_line(monkeypatch, capsys):
    from container_fakes import FakeClient

    client = FakeClient([{"stream": "Step 1/9 : FROM base\n"}, {"error": "pytest failed"}])
    monkeypatch.setattr("deeplab_nnapi.container.engine.connect", lambda url: client)
    assert build_image.main(["--target", "check", "--quiet"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "build_image: error: build of target 'check' failed: pytest failed"]
