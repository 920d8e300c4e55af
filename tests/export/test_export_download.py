"""Checkpoint download: cache hit, resume with Range, restart, sha256 mismatch, archive extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from deeplab_nnapi.export.download import DownloadError, extract_checkpoint, fetch, sha256_file

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_then_cache_hit(http_server, tmp_path):
    url, st = http_server
    st.files["/ckpt.tar.gz"] = PAYLOAD
    r = fetch(url + "/ckpt.tar.gz", tmp_path, SHA)
    assert r.path == tmp_path / "ckpt.tar.gz" and r.path.read_bytes() == PAYLOAD
    assert not r.cached and r.sha256 == SHA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.tar.gz"]  # no .part left
    n = len(st.requests)
    again = fetch(url + "/ckpt.tar.gz", tmp_path, SHA)
    assert again.cached and again.path == r.path
    assert len(st.requests) == n  # no network for a verified cache hit


def test_broken_download_is_resumed_with_range(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    st.cut_after["/a.tgz"] = 300_000  # first response stops after 300 kB
    r = fetch(url + "/a.tgz", tmp_path, SHA)
    assert r.path.read_bytes() == PAYLOAD
    assert r.resumed and r.attempts == 2
    assert st.requests[0][1] is None
    assert st.requests[1][1] == "bytes=300000-"


def test_partial_file_from_an_earlier_run_is_resumed(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    (tmp_path / "a.tgz.part").write_bytes(PAYLOAD[:12345])
    r = fetch(url + "/a.tgz", tmp_path, SHA)
    assert r.path.read_bytes() == PAYLOAD and r.resumed
    assert st.requests == [("/a.tgz", "bytes=12345-")]


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    st.ignore_range = True
    (tmp_path / "a.tgz.part").write_bytes(b"garbage" * 100)
    r = fetch(url + "/a.tgz", tmp_path, SHA)
    assert r.path.read_bytes() == PAYLOAD and not r.resumed


def test_refused_range_restarts(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    st.refuse_range = True
    (tmp_path / "a.tgz.part").write_bytes(PAYLOAD[:1000])
    r = fetch(url + "/a.tgz", tmp_path, SHA)
    assert r.path.read_bytes() == PAYLOAD
    assert [rng for _, rng in st.requests] == ["bytes=1000-", None]


def test_stale_partial_with_wrong_bytes_restarts_after_mismatch(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    (tmp_path / "a.tgz.part").write_bytes(b"\xff" * 5000)  # other content, same length range
    r = fetch(url + "/a.tgz", tmp_path, SHA)
    assert r.path.read_bytes() == PAYLOAD
    assert [rng for _, rng in st.requests] == ["bytes=5000-", None]


def test_sha_mismatch_fails_and_leaves_nothing(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch(url + "/a.tgz", tmp_path, "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cache_entry_is_replaced(http_server, tmp_path):
    url, st = http_server
    st.files["/a.tgz"] = PAYLOAD
    (tmp_path / "a.tgz").write_bytes(b"truncated")
    r = fetch(url + "/a.tgz", tmp_path, SHA)
    assert not r.cached and r.path.read_bytes() == PAYLOAD


def test_missing_file_is_one_error(http_server, tmp_path):
    url, _ = http_server
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(url + "/nope.tgz", tmp_path, SHA)


def test_unreachable_server_gives_up(tmp_path):
    with pytest.raises(DownloadError, match="after 2 attempt"):
        fetch("http://127.0.0.1:9/x.tgz", tmp_path, SHA, attempts=2, timeout=2)


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_extract_checkpoint_once(tmp_path):
    arc = tmp_path / "ck_2019.tar.gz"
    arc.write_bytes(_tar({"ck/model.ckpt.index": b"i", "ck/model.ckpt.data-00000-of-00001": b"d"}))
    prefix = extract_checkpoint(arc, "ck", "model.ckpt", tmp_path / "x")
    assert prefix.name == "model.ckpt" and (prefix.parent / "model.ckpt.index").read_bytes() == b"i"
    again = extract_checkpoint(arc, "ck", "model.ckpt", tmp_path / "x")
    assert again == prefix
    assert [p.name for p in (tmp_path / "x").iterdir()] == [prefix.parent.parent.name]  # no temp dirs


def test_extract_finds_unique_checkpoint_elsewhere(tmp_path):
    arc = tmp_path / "ck.tar.gz"
    arc.write_bytes(_tar({"other/model.ckpt.index": b"i"}))
    prefix = extract_checkpoint(arc, "ck", "model.ckpt", tmp_path / "x", archive_sha256=sha256_file(arc))
    assert prefix.parent.name == "other"


def test_extract_takes_the_only_checkpoint_whatever_its_step(tmp_path):
    arc = tmp_path / "ck.tar.gz"
    arc.write_bytes(_tar({"x/model.ckpt-30000.index": b"i", "x/model.ckpt-30000.data-00000-of-00001": b"d"}))
    prefix = extract_checkpoint(arc, "ck", "model.ckpt", tmp_path / "x")
    assert prefix.name == "model.ckpt-30000"


def test_extract_refuses_paths_outside(tmp_path):
    arc = tmp_path / "evil.tar.gz"
    arc.write_bytes(_tar({"../escape.txt": b"x", "ck/model.ckpt.index": b"i"}))
    with pytest.raises(DownloadError, match="outside"):
        extract_checkpoint(arc, "ck", "model.ckpt", tmp_path / "x")
    assert not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "x").iterdir()) == []


def test_extract_without_checkpoint_fails(tmp_path):
    arc = tmp_path / "ck.tar.gz"
    arc.write_bytes(_tar({"ck/readme": b"x"}))
    with pytest.raises(DownloadError, match="no checkpoint"):
        extract_checkpoint(arc, "ck", "model.ckpt", tmp_path / "x")
