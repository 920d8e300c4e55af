"""Google's original export (align_corners=True resizes, int64 ArgMax), rebuilt from a reference model:
the prediction must reproduce the phone's profile (seed_profile.txt) node for node."""

from __future__ import annotations

import json
import subprocess
import sys

from deeplab_nnapi.cli.check_delegation import main
from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model
from deeplab_nnapi.nnapi.profile import load_profile
from deeplab_nnapi.nnapi.tflite_model import load_model
from reference_support import REPO_ROOT

SEED_NODES = [  # (type, ops, node index) as in seed_profile.txt
    ("TfLiteNnapiDelegate", list(range(61)) + [64], 71),
    ("AVERAGE_POOL_2D", [61], 61),
    ("TfLiteNnapiDelegate", [62], 72),
    ("RESIZE_BILINEAR", [63], 63),
    ("TfLiteNnapiDelegate", [65, 66, 67], 73),
    ("RESIZE_BILINEAR", [68], 68),
    ("RESIZE_BILINEAR", [69], 69),
    ("ARG_MAX", [70], 70),
]


def test_fixture_has_googles_options(google_model):
    m = load_model(google_model)
    resizes = [op for op in m.operators if op.op_type == "RESIZE_BILINEAR"]
    assert [op.index for op in resizes] == [63, 68, 69]
    assert all(op.options["align_corners"] is True for op in resizes)
    argmax = m.operators[70]
    assert argmax.options["output_type"] == "INT64"
    assert m.tensors[argmax.outputs[0]].type == "INT64"


def test_stock_api29_is_exactly_the_seed_profile(google_model, seed_profile):
    plan = check_model(google_model, DelegateOptions(android_api=29, delegate="stock"))
    assert [(n.type, n.ops, n.index) for n in plan.nodes] == SEED_NODES
    profile = load_profile(seed_profile)
    assert [(n.type, n.index) for n in plan.nodes] == [(n.type, n.index) for n in profile.nodes]
    assert [n.name for n in plan.nodes] == [n.name for n in profile.nodes]  # same output tensor names
    assert [(r.op, r.reason) for r in plan.refused] == [
        (61, "Large filter window would overflow on the reference CPU path (filter 65x65 = 4225 > 256)"),
        (63, "NNAPI does not support align_corners == true."),
        (68, "NNAPI does not support align_corners == true."),
        (69, "NNAPI does not support align_corners == true."),
        (70, "NNAPI only supports int32 output."),
    ]


def test_same_answer_with_older_releases_at_api29(google_model):
    for tf in ("2.1", "2.2", "2.3"):
        plan = check_model(google_model, DelegateOptions(android_api=29, delegate="stock", tf_version=tf))
        assert [(n.type, n.ops, n.index) for n in plan.nodes] == SEED_NODES, tf


def test_api30_delegates_the_align_corners_resizes(google_model):
    # NNAPI 1.3 (API 30) has align_corners: the three resizes join the delegate; pool and int64 ArgMax stay.
    plan = check_model(google_model, DelegateOptions(android_api=30, delegate="stock"))
    assert [(n.type, n.ops, n.index) for n in plan.nodes] == [
        ("TfLiteNnapiDelegate", list(range(61)) + [64], 71),
        ("AVERAGE_POOL_2D", [61], 61),
        ("TfLiteNnapiDelegate", [62, 63, 65, 66, 67, 68, 69], 72),
        ("ARG_MAX", [70], 70),
    ]
    assert [r.op for r in plan.refused] == [61, 70]
    # ... but not with a TF 2.2 delegate, which refuses align_corners at every API level
    old = check_model(google_model, DelegateOptions(android_api=30, delegate="stock", tf_version="2.2"))
    assert [(n.type, n.ops, n.index) for n in old.nodes] == SEED_NODES
    # patched (no pool check) at API 30: only the int64 ArgMax is left on the CPU
    patched = check_model(google_model, DelegateOptions(android_api=30, delegate="patched"))
    assert [(n.type, n.ops) for n in patched.nodes] == [
        ("TfLiteNnapiDelegate", list(range(70))),
        ("ARG_MAX", [70]),
    ]


def test_profile_beside_fixture_shows_no_difference(google_model, seed_profile, capsys):
    assert main([str(google_model), "--delegate", "stock", "--profile", str(seed_profile)]) == 0
    out = capsys.readouterr().out
    assert "no difference: the prediction matches the profile node for node" in out
    assert "DIFFERENT" not in out
    assert main([str(google_model), "--delegate", "stock", "--profile", str(seed_profile), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["differences"] == []
    assert data["profile"]["cpu_fallback_percent"] == 74.1


def test_profile_beside_patched_reference_model_flags_differences(pascal_513_os8, seed_profile, capsys):
    assert main([str(pascal_513_os8), "--profile", str(seed_profile)]) == 0
    out = capsys.readouterr().out
    assert "difference(s):" in out and "DIFFERENT" in out
    assert main([str(pascal_513_os8), "--profile", str(seed_profile), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    diffs = data["differences"]
    assert diffs[0]["what"] == "output names differ"  # [ArgMax]:71 vs [..add_fold, aspp0/Relu]:71
    assert sum(d["what"] == "node in the profile only" for d in diffs) == 7


def test_cli_text_output_on_fixture_mirrors_run_order(google_model):
    r = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "check_delegation.py"),
            str(google_model),
            "--delegate",
            "stock",
            "--android-api",
            "29",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "TfLiteNnapiDelegate  0-60 + 64" in lines[2]
    assert lines[2].endswith("[MobilenetV2/expanded_conv_16/project/add_fold, aspp0/Relu]:71")
    assert lines[9].split()[0] == "ARG_MAX" and lines[9].endswith("[ArgMax]:70")
    assert sum(line.startswith("  refused:") for line in lines) == 5
