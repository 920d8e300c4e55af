"""docker/verify_models.py: the verify stage's comparison of the real delegate (the probe) and the
predictor, through the library (probe.run, probe.crosscheck), with a stand-in probe that answers in
nnapi_probe's format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from deeplab_nnapi import REPO_ROOT

SCRIPT = REPO_ROOT / "docker" / "verify_models.py"
DELEGATE = "TfLiteNnapiDelegate"
POOL_REASON = "Large filter window would overflow on the reference CPU path"
SOURCES = {
    "schema": 1,
    "tensorflow": {
        "origin": "build context",
        "from": "local-trees/tf",
        "name": "TF_DIR=local-trees/tf",
        "commit": "f67457790c9c2ab67347d6fe53270e8d3df20868",
        "commit_source": "--build-arg TF_DIR_COMMIT (stated, not checked)",
        "layout": "litert",
        "version": None,
        "shape": "c",
        "toolchain": {"layout": "litert", "bazel_version": "7.7.0",
                      "target": "//tflite/tools/benchmark:benchmark_model"},
        "patches": [
            {
                "name": "litert-nnapi-avgpool-area-shape-c",
                "file": "litert/shape-c/0001-lite-nnapi-delegate-large-average-pool-windows.patch",
                "shape": "c",
                "strategy": "clean",
                "state": "applied",
            }
        ],
    },
    "models": {
        "origin": "build context",
        "name": "MODELS_DIR=local-trees/models",
        "commit": "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b",
        "patches": [{}, {}, {}],
    },
}


def fake_probe(path, mode="single"):
    """An executable that answers like nnapi_probe: one JSON line per (model, API level). ``mode``:
    single (one delegate node), split (the pool on the CPU, as the stock delegate does), crash-ade20k (dies
    of SIGSEGV on the ade20k models)."""
    path.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, signal, sys
        argv = sys.argv[1:]
        apis = [int(a) for a in argv[argv.index("--android-api") + 1].split(",")]
        models = argv[argv.index("--") + 1:]
        for m in models:
            for api in apis:
                if {mode!r} == "crash-ade20k" and "ade20k" in m:
                    sys.stdout.flush()
                    os.kill(os.getpid(), signal.SIGSEGV)
                if {mode!r} == "split":
                    nodes = [{{"index": 71, "type": "{DELEGATE}", "ops": list(range(61)), "outputs": [1]}},
                             {{"index": 61, "type": "AVERAGE_POOL_2D", "ops": [61], "outputs": [2]}},
                             {{"index": 72, "type": "{DELEGATE}", "ops": list(range(62, 71)),
                               "outputs": [0]}}]
                    refused = [{{"op": 61, "op_type": "AVERAGE_POOL_2D", "reason": "{POOL_REASON}"}}]
                else:
                    nodes = [{{"index": 71, "type": "{DELEGATE}", "ops": list(range(71)), "outputs": [0]}}]
                    refused = []
                print(json.dumps({{"model": m, "android_api": api, "feature_level": api, "hook": True,
                                  "status": "ok", "nodes": nodes, "refused": refused, "messages": []}}))
        """)
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def models(tmp_path, reference_models):
    d = tmp_path / "models"
    d.mkdir()
    for m in reference_models:
        if "513_os16" in m.name:  # pascal, cityscapes and ade20k: one of each
            (d / m.name).symlink_to(m)
    return d


def run(tmp_path, models, probe, *extra, sources=SOURCES):
    out = tmp_path / "report"
    src = tmp_path / "sources.json"
    src.write_text(json.dumps(sources))
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--probe",
        str(probe),
        "--models",
        str(models),
        "--sources",
        str(src),
        "--out",
        str(out),
        *extra,
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / "tools")),
    )
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return proc, report, out


def test_agreeing_single_partition_passes_and_the_report_names_the_tree(tmp_path, models):
    proc, report, out = run(tmp_path, models, fake_probe(tmp_path / "probe"), "--api-levels", "29", "30")
    assert proc.returncode == 0, proc.stderr
    assert report["ok"] is True and len(report["results"]) == 6
    assert all(r["agree"] and r["single_partition"] and not r["differences"] for r in report["results"])
    assert report["predictor_rules"].startswith("TF 2."), "LiteRT: the newest release's rules"
    md = (out / "report.md").read_text()
    assert (
        "| deeplabv3_mnv2_ade20k_513_os16_dummy_quant.tflite | 30 | TfLiteNnapiDelegate[0-70] | "
        "TfLiteNnapiDelegate[0-70] | yes | yes |"
    ) in md
    tree = next(line for line in md.splitlines() if line.startswith("- TensorFlow tree:"))
    for fragment in (
        "TF_DIR=local-trees/tf",
        "layout litert",
        "version unknown",
        "commit f67457790c9c2ab67347d6fe53270e8d3df20868",
        "litert/shape-c/0001-lite-nnapi-delegate-large-average-pool-windows.patch",
    ):
        assert fragment in tree
    assert "commit 6fb5646f18d7173dd08a576a819a8dc9b36a6d8b" in md and "Result: **PASS**" in md
    assert ("- benchmark_model (toolchain stage, `artifacts` only): "
            "`//tflite/tools/benchmark:benchmark_model` with Bazel 7.7.0") in md


def test_the_predictor_uses_the_rules_of_the_trees_release(tmp_path, models):
    sources = json.loads(json.dumps(SOURCES))
    sources["tensorflow"].update(layout="tensorflow", version="2.14.0")
    proc, report, _ = run(tmp_path, models, fake_probe(tmp_path / "probe"), sources=sources)
    assert proc.returncode == 0, proc.stderr
    assert report["predictor_rules"] == "TF 2.14"


def test_the_stock_delegates_split_is_a_difference_and_fails(tmp_path, models):
    """A probe built from an unpatched tree keeps the pool on the CPU; the predictor of the patched delegate
    says one partition: the build must fail and the report must say where they differ."""
    proc, report, out = run(tmp_path, models, fake_probe(tmp_path / "probe", "split"))
    assert proc.returncode == 1
    assert not any(r["agree"] or r["ok"] for r in report["results"])
    first = report["results"][0]
    assert any("refused only by the real delegate" in d and POOL_REASON in d for d in first["differences"])
    md = (out / "report.md").read_text()
    assert "AVERAGE_POOL_2D(61)" in md and "## Differences and errors" in md and "Result: **FAIL**" in md


def test_a_crashing_probe_costs_its_model_only_and_is_reported(tmp_path, models):
    proc, report, out = run(
        tmp_path, models, fake_probe(tmp_path / "probe", "crash-ade20k"), "--api-levels", "29", "30"
    )
    assert proc.returncode == 1
    bad = [r for r in report["results"] if not r["ok"]]
    assert {r["model"] for r in bad} == {"deeplabv3_mnv2_ade20k_513_os16_dummy_quant.tflite"}
    assert all(r["probe"] is None and r["probe_error"].startswith("crash: ") for r in bad)
    assert "SIGSEGV" in bad[0]["probe_error"]
    assert sum(r["ok"] for r in report["results"]) == 4, "the other models still get their plans"


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--api-levels", "26"], "API level 26 outside 27..35"),
        (["--models", "/nonexistent"], "no .tflite models in /nonexistent"),
        (["--probe", "/nonexistent/nnapi_probe"], "--probe /nonexistent/nnapi_probe: no such file"),
    ],
)
def test_bad_usage_is_exit_2_and_writes_no_report(tmp_path, models, extra, fragment):
    proc, report, _ = run(tmp_path, models, fake_probe(tmp_path / "probe"), *extra)
    assert proc.returncode == 2 and fragment in proc.stderr and report is None
    assert proc.stderr.strip().splitlines()[-1].startswith("verify_models: error: ")
