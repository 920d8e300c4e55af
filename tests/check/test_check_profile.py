"""Reading benchmark_model --enable_op_profiling output."""

from __future__ import annotations

import json

import pytest
from deeplab_nnapi.cli.check_delegation import main
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.profile import load_profile, parse_profile_text


def test_seed_profile_summary(seed_profile):
    p = load_profile(seed_profile)
    assert len(p.nodes) == 8
    assert len(p.delegate_nodes) == 3
    assert p.cpu_fallback_percent == 74.1
    assert [n.index for n in p.nodes] == [71, 61, 72, 63, 73, 68, 69, 70]
    assert p.nodes[0].name == "[MobilenetV2/expanded_conv_16/project/add_fold, aspp0/Relu]"
    assert p.nodes[6].avg_ms == pytest.approx(22.369) and p.nodes[6].percent == pytest.approx(42.965)


def test_cli_profile_only_text_and_json(seed_profile, capsys):
    assert main(["--profile", str(seed_profile)]) == 0
    out = capsys.readouterr().out
    assert "8 nodes (3 delegate, 5 CPU), CPU fallback 74.1 % of the run" in out
    assert main(["--profile", str(seed_profile), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["delegate_nodes"] == 3 and data["cpu_fallback_percent"] == 74.1
    assert len(data["nodes"]) == 8
    assert set(data["nodes"][0]) >= {"type", "name", "avg_ms", "percent"}
    # a profile with several nodes is not a single partition
    assert main(["--profile", str(seed_profile), "--expect-single-partition"]) == 1


def _full_output(seed_text: str) -> str:
    """benchmark_model's whole output around the seed's table: log lines, an initialization profile
    (newer releases), the regular run order, top-by-time and summary-by-type sections."""
    table_lines = seed_text.strip("\n").splitlines()
    header, rows = table_lines[2], table_lines[3:]
    init = "\n".join(
        [
            "Profiling Info for Benchmark Initialization:",
            "============================== Run Order ==============================",
            "\t".join(
                [
                    "",
                    "[node type]",
                    "[start]",
                    "[first]",
                    "[avg ms]",
                    "[%]",
                    "[cdf%]",
                    "[mem KB]",
                    "[times called]",
                    "[Name]",
                ]
            ),
            "\t".join(
                [
                    "",
                    "ModifyGraphWithDelegate",
                    "0.000",
                    "512.000",
                    "512.000",
                    "99.000%",
                    "99.000%",
                    "0.000",
                    "1",
                    "ModifyGraphWithDelegate/0",
                ]
            ),
            "",
        ]
    )
    top = ["============================== Top by Computation Time ==============================", header]
    top += sorted(rows, key=lambda r: -float(r.split("\t")[4]))
    summary = [
        "============================== Summary by node type ==============================",
        "\t".join(
            ["", "[Node type]", "[count]", "[avg ms]", "[avg %]", "[cdf %]", "[mem KB]", "[times called]"]
        ),
        "\t     TfLiteNnapiDelegate\t        3\t    13.462\t    25.858%\t    25.858%\t     0.000\t        3",
        "",
        "Timings (microseconds): count=50 first=52345 curr=52063 min=51800 max=53012 avg=52100 std=230",
    ]
    return "\n".join(
        [
            "STARTING!",
            "Log parameter values verbosely: [0]",
            "Use NNAPI: [1]",
            "INFO: Initialized TensorFlow Lite runtime.",
            "INFO: Created TensorFlow Lite delegate for NNAPI.",
            "The input model file size (MB): 2.18344",
            "Initialized session in 612.1ms.",
            "",
            init,
            seed_text.rstrip("\n"),
            "",
            *top,
            "",
            *summary,
            "",
        ]
    )


def test_full_benchmark_output_uses_regular_run_order(seed_profile):
    text = _full_output(seed_profile.read_text())
    p = parse_profile_text(text, "full.txt")
    assert [n.index for n in p.nodes] == [71, 61, 72, 63, 73, 68, 69, 70]
    assert p.cpu_fallback_percent == 74.1
    assert "Regular Benchmark Runs" in p.section


def test_spaces_instead_of_tabs_and_no_percent_column():
    text = "\n".join(
        [
            "============================== Run Order ==============================",
            "  [node type]     [start]   [first]   [avg ms]   [Name]",
            "  TfLiteNnapiDelegate   0.000   3.000   3.000   [a, b]:5",
            "  ARG_MAX   3.000   1.000   1.000   [out]:4",
        ]
    )
    p = parse_profile_text(text)
    assert [(n.type, n.index) for n in p.nodes] == [("TfLiteNnapiDelegate", 5), ("ARG_MAX", 4)]
    assert p.nodes[0].name == "[a, b]"
    assert p.cpu_fallback_percent == 25.0  # from avg ms


def test_text_without_table_is_usage_error():
    with pytest.raises(UsageError):
        parse_profile_text("INFO: nothing\n====== Run Order ======\n")
