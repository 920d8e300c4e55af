"""Regressions found by review of check_delegation."""

from __future__ import annotations

import json

import pytest
from deeplab_nnapi.cli.check_delegation import main


def test_expect_single_partition_also_holds_the_profile_to_it(pascal_513_os8, seed_profile, capsys):
    """The patched prediction is one node but the phone's profile shows 8: that is not 'single'."""
    args = [str(pascal_513_os8), "--profile", str(seed_profile), "--expect-single-partition"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "result: 1 node (1 delegate, 0 CPU): single NNAPI partition" in out
    assert main(args + ["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["single_partition"] is True and data["profile"]["node_count"] == 8
    assert data["differences"]
    # the prediction alone still passes
    assert main([str(pascal_513_os8), "--expect-single-partition"]) == 0


def test_empty_accelerator_name_is_no_accelerator(pascal_513_os8, capsys):
    """benchmark_model sets accelerator_name only when --nnapi_accelerator_name is not empty, so an empty
    name must leave the stock pool-size check in force (3 nodes), like no --accelerator at all."""
    base = [str(pascal_513_os8), "--delegate", "stock", "--json"]
    results = {}
    for extra in ([], ["--accelerator", ""], ["--accelerator", "nnapi-reference"], ["--accelerator", "dsp"]):
        assert main(base + extra) == 0
        d = json.loads(capsys.readouterr().out)
        results[tuple(extra)] = (d["options"]["is_accelerator_specified"], len(d["nodes"]))
    assert results[()] == results[("--accelerator", "")] == (False, 3)
    assert results[("--accelerator", "nnapi-reference")] == (False, 3)
    assert results[("--accelerator", "dsp")] == (True, 1)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_profile_saved_with_a_byte_order_mark_is_read(seed_profile, tmp_path, capsys, encoding):
    """PowerShell 5 redirects (`adb shell benchmark_model ... > p.txt`) write UTF-16 with a BOM."""
    text = seed_profile.read_text(encoding="utf-8").replace("\n", "\r\n")
    p = tmp_path / "profile.txt"
    data = text.encode(encoding)
    p.write_bytes(data if encoding != "utf-16-be" else b"\xfe\xff" + data)
    assert main(["--profile", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["node_count"] == 8 and d["delegate_nodes"] == 3 and d["cpu_fallback_percent"] == 74.1
