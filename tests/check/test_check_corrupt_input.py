"""Bad input: exit 2, one line on stderr, no traceback; fuzzed models never crash the tool."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from deeplab_nnapi.cli.check_delegation import main
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import check_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_support import REPO_ROOT

TOOL = REPO_ROOT / "tools" / "check_delegation.py"


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the thin script must find its package by itself
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60, env=env
    )


def assert_one_line_error(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("check_delegation: error:")


@pytest.fixture(scope="module")
def model_bytes(pascal_513_os8) -> bytes:
    return pascal_513_os8.read_bytes()


def test_cli_missing_file(tmp_path):
    r = run_tool(str(tmp_path / "nope.tflite"))
    assert_one_line_error(r)
    assert "no such file" in r.stderr


def test_cli_truncated_random_and_wrong_magic(tmp_path, model_bytes):
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(model_bytes[: len(model_bytes) // 2])
    rnd = tmp_path / "random.tflite"
    rnd.write_bytes(random.Random(3).randbytes(4096))
    magic = tmp_path / "magic.tflite"
    magic.write_bytes(model_bytes[:4] + b"XXXX" + model_bytes[8:])
    for path, words in (
        (truncated, "not a valid TensorFlow Lite model"),
        (rnd, "file identifier"),
        (magic, "file identifier"),
    ):
        r = run_tool(str(path), "--expect-single-partition")
        assert_one_line_error(r)
        assert words in r.stderr and str(path) in r.stderr


def test_cli_bad_options_and_profile(tmp_path, pascal_513_os8):
    for args in (
        ["--android-api", "26", str(pascal_513_os8)],
        ["--tf-version", "9.9", str(pascal_513_os8)],
        ["--delegate", "other", str(pascal_513_os8)],
        ["--max-partitions", "-1", str(pascal_513_os8)],
        [],
        ["--profile", str(tmp_path / "missing.txt")],
    ):
        assert_one_line_error(run_tool(*args))
    not_profile = tmp_path / "log.txt"
    not_profile.write_text("INFO: Initialized TensorFlow Lite runtime.\nno table here\n")
    r = run_tool("--profile", str(not_profile))
    assert_one_line_error(r)
    assert "no benchmark_model op-profiling table" in r.stderr


@pytest.mark.parametrize("cut", [0, 7, 15, 16, 100, 5000, 1_000_000, -9, -100])
def test_truncations_are_usage_errors(model_bytes, cut):
    data = model_bytes[:cut]
    with pytest.raises(UsageError) as info:
        check_model(data)
    assert "\n" not in str(info.value)


def test_cut_in_unreferenced_trailing_table_is_still_a_model(model_bytes):
    # The converter left an unreferenced 8-byte table at the very end; TFLite's verifier (like this tool)
    # accepts the file without it, and rejects it as soon as a referenced byte is cut (-9, above).
    assert check_model(model_bytes[:-8]).num_ops == 71


def test_empty_file_and_directory(tmp_path, capsys):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    assert main([str(empty)]) == 2
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "empty file" in err[0] and "directory" in err[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_models_never_crash(tmp_path_factory, model_bytes, data):
    """Overwrite bytes where a real model keeps its tables (the first 40 kB and the last 4 kB, not the
    weights): the tool answers 0, 1 or 2, never a traceback."""
    buf = bytearray(model_bytes)
    head = 40_000
    edits = data.draw(
        st.lists(
            st.tuples(st.one_of(st.integers(0, head - 1), st.integers(-4096, -1)), st.integers(0, 255)),
            min_size=1,
            max_size=8,
        )
    )
    for pos, value in edits:
        buf[pos] = value
    path = tmp_path_factory.mktemp("fuzz") / "fuzzed.tflite"
    path.write_bytes(bytes(buf))
    code = main([str(path), "--expect-single-partition", "--json"])
    assert code in (0, 1, 2)


@settings(max_examples=40, deadline=None)
@given(blob=st.binary(min_size=0, max_size=512))
def test_random_blobs_are_rejected(blob):
    with pytest.raises(UsageError):
        check_model(b"\x18\x00\x00\x00TFL3" + blob if blob[:1] == b"\x00" else blob)
