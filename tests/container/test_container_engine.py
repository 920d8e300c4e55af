"""deeplab_nnapi.container.engine against a fake docker SDK client: streaming, errors, artifact extraction."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from container_fakes import GOOD_EVENTS, FakeClient, tar_of
from deeplab_nnapi import REPO_ROOT
from deeplab_nnapi.container.engine import (
    BuildFailed,
    EngineUnavailable,
    build,
    connect,
    export_artifacts,
    parse_build_args,
    resolve_engine,
)
from deeplab_nnapi.errors import EXIT_FAIL, EXIT_USAGE, UsageError


def test_build_streams_progress_in_order_and_passes_target_and_args(fake_client):
    lines = []
    result = build(fake_client, REPO_ROOT, target="check", build_args={"TF_TAG": "v2.18.0"}, tag="t:1",
                   on_line=lines.append)
    assert result.image_id == "sha256:feedbeef"
    assert lines == ["Step 1/3 : FROM scratch", " ---> Running in 1234",
                     "layer1 Downloading [==>   ] 1MB/3MB", "Successfully built feedbeef"]
    kw = fake_client.api.build_kwargs
    assert kw["target"] == "check" and kw["buildargs"] == {"TF_TAG": "v2.18.0"} and kw["tag"] == "t:1"
    assert kw["dockerfile"] == "docker/Dockerfile" and kw["decode"] is True
    assert Path(kw["path"]) == REPO_ROOT


def test_build_error_event_fails_with_the_engines_last_line():
    client = FakeClient(GOOD_EVENTS[:2] + [
        {"errorDetail": {"message": "The command '/bin/sh -c pytest' returned a non-zero code: 1"},
         "error": "step 9\nThe command '/bin/sh -c pytest' returned a non-zero code: 1"}])
    with pytest.raises(BuildFailed) as err:
        build(client, REPO_ROOT, target="check")
    assert err.value.exit_code == EXIT_FAIL
    assert str(err.value) == ("build of target 'check' failed: The command '/bin/sh -c pytest' returned a "
                              "non-zero code: 1")


def test_build_without_an_image_id_is_a_failure():
    with pytest.raises(BuildFailed, match="without an image"):
        build(FakeClient([{"stream": "Step 1/1 : FROM scratch\n"}]), REPO_ROOT)


def test_build_refuses_a_missing_dockerfile(tmp_path, fake_client):
    with pytest.raises(UsageError, match="no Dockerfile"):
        build(fake_client, tmp_path)


def test_export_copies_every_artifact_and_removes_the_container(fake_client, tmp_path):
    out = tmp_path / "out"
    files = export_artifacts(fake_client, "sha256:feedbeef", out)
    rel = sorted(str(f.relative_to(out)) for f in files)
    assert rel == ["android_arm64/benchmark_model", "host/benchmark_model", "host/nnapi_probe",
                   "models/a.tflite", "models/manifest.json", "report/report.json", "report/report.md"]
    assert (out / "android_arm64" / "benchmark_model").read_bytes() == b"ELF-arm64"
    assert os.access(out / "android_arm64" / "benchmark_model", os.X_OK)
    assert fake_client.api.created == ["sha256:feedbeef"] and fake_client.api.removed == ["cid-0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging directory left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask, "an ordinary directory, not mkdtemp's 0700"


def test_export_failure_keeps_the_previous_output_intact(fake_client, tmp_path):
    out = tmp_path / "out"
    (out / "models").mkdir(parents=True)
    (out / "models" / "old.tflite").write_bytes(b"old")
    del fake_client.api.archives["/report"]
    with pytest.raises(BuildFailed, match="has no /report"):
        export_artifacts(fake_client, "img", out)
    assert [p.name for p in (out / "models").iterdir()] == ["old.tflite"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert fake_client.api.removed == ["cid-0"], "the container is removed on failure too"


def test_export_replaces_an_existing_output_on_success(fake_client, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("stale")
    export_artifacts(fake_client, "img", out)
    assert not (out / "stale.txt").exists() and (out / "models" / "a.tflite").is_file()


@pytest.mark.parametrize("archive", [
    tar_of({"../evil": b"x"}),
    tar_of({"models/a.tflite": b"x"}, links={"models/escape": "/etc/passwd"}),
    tar_of({"models/a.tflite": b"x"}, links={"models/up": "../../outside"}),
])
def test_export_refuses_unsafe_archives_and_writes_nothing(fake_client, tmp_path, archive):
    fake_client.api.archives["/models"] = archive
    with pytest.raises(BuildFailed, match="unsafe path|link leaving"):
        export_artifacts(fake_client, "img", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_parse_build_args():
    assert parse_build_args(["A=1", "B_C=x=y", "EMPTY="]) == {"A": "1", "B_C": "x=y", "EMPTY": ""}
    for bad in ["NOVALUE", "=1", "1X=2", "A-B=3"]:
        with pytest.raises(UsageError) as err:
            parse_build_args([bad])
        assert err.value.exit_code == EXIT_USAGE


def test_resolve_engine_order(tmp_path, monkeypatch):
    sock = tmp_path / "docker.sock"
    sock.touch()
    assert resolve_engine("tcp://10.0.0.1:2375", env={}) == "tcp://10.0.0.1:2375"
    assert resolve_engine(None, env={"DOCKER_HOST": f"unix://{sock}"}) == f"unix://{sock}"
    with pytest.raises(EngineUnavailable, match="DOCKER_HOST is unix:///nonexistent.sock"):
        resolve_engine(None, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    monkeypatch.setattr("deeplab_nnapi.container.engine.DEFAULT_SOCKETS", ("/nonexistent/a.sock", str(sock)))
    assert resolve_engine(None, env={}) == f"unix://{sock}"
    monkeypatch.setattr("deeplab_nnapi.container.engine.DEFAULT_SOCKETS", ("/nonexistent/a.sock",))
    with pytest.raises(EngineUnavailable, match="DOCKER_HOST is not set and none of /nonexistent/a.sock"):
        resolve_engine(None, env={})


def test_connect_without_the_sdk_is_a_usage_error(tmp_path, monkeypatch):
    sock = tmp_path / "docker.sock"
    sock.touch()
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker -> ImportError
    with pytest.raises(UsageError, match=r"docker SDK is not installed: pip install 'deeplab-nnapi\["):
        connect(f"unix://{sock}")


def test_connect_pings_and_reports_an_engine_that_does_not_answer(tmp_path):
    sock = tmp_path / "docker.sock"
    sock.touch()
    made = []

    def factory(base_url, timeout):
        made.append(base_url)
        return FakeClient()

    client = connect(f"unix://{sock}", client_factory=factory)
    assert client.pinged == 1 and made == [f"unix://{sock}"]

    class Dead(FakeClient):
        def ping(self):
            raise ConnectionError("Connection refused\nmore detail")

    with pytest.raises(EngineUnavailable) as err:
        connect(f"unix://{sock}", client_factory=lambda base_url, timeout: Dead())
    assert str(err.value) == f"no container engine answering at unix://{sock}: Connection refused"


def test_real_docker_sdk_against_a_socket_that_is_no_engine(tmp_path):
    """With the real SDK (the `container` extra): a socket that answers nothing is one EngineUnavailable."""
    if not hasattr(pytest.importorskip("docker"), "DockerClient"):
        pytest.skip("the docker SDK is not installed (`docker` is this repository's docker/ directory)")
    import socket
    import threading

    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)

    def hang_up():
        for _ in range(4):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(EngineUnavailable) as err:
            connect(f"unix://{path}", timeout=5)
    finally:
        server.close()
    assert str(err.value).startswith(f"no container engine answering at unix://{path}: ")
    assert "\n" not in str(err.value)
