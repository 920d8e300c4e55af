"""docker/verify_models.py: the verify stage's comparison of the probe and check_delegation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from deeplab_nnapi import REPO_ROOT

SCRIPT = REPO_ROOT / "docker" / "verify_models.py"
ONE = {"nodes": [{"type": "TfLiteNnapiDelegate", "ops": list(range(71))}]}
SPLIT = {"nodes": [{"type": "TfLiteNnapiDelegate", "ops": list(range(61))},
                   {"type": "AVERAGE_POOL_2D", "ops": [61]},
                   {"type": "TfLiteNnapiDelegate", "ops": list(range(62, 71))}]}


def fake_tool(path, plans_by_model, exit_code=0):
    """A stand-in for the probe / check: prints the plan for the model named in its arguments."""
    path.write_text(textwrap.dedent(f"""\
        import json, sys
        plans = {json.dumps(plans_by_model)!r}
        plans = json.loads(plans)
        model = next(a for a in sys.argv[1:] if a.endswith(".tflite"))
        api = sys.argv[sys.argv.index("--android-api") + 1]
        plan = plans.get(model.rsplit("/", 1)[-1] + "@" + api) or plans[model.rsplit("/", 1)[-1]]
        if plan == "crash":
            print("Segmentation fault", file=sys.stderr)
            sys.exit(139)
        print(json.dumps(plan))
        sys.exit({exit_code})
        """))
    return f"{sys.executable} {path}"


@pytest.fixture
def models(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    for name in ("a.tflite", "b.tflite"):
        (d / name).write_bytes(b"TFL3")
    return d


def run(tmp_path, models, probe, check, *extra):
    out = tmp_path / "report"
    cmd = [sys.executable, str(SCRIPT), "--probe", probe, "--check", check, "--models", str(models),
           "--out", str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return proc, report, out


def test_agreeing_single_partition_passes_and_writes_both_reports(tmp_path, models):
    probe = fake_tool(tmp_path / "probe.py", {"a.tflite": ONE, "b.tflite": ONE})
    check = fake_tool(tmp_path / "check.py", {"a.tflite": ONE, "b.tflite": ONE})
    proc, report, out = run(tmp_path, models, probe, check, "--api-levels", "29", "30")
    assert proc.returncode == 0, proc.stderr
    assert report["ok"] is True and len(report["results"]) == 4
    assert {(r["model"], r["android_api"]) for r in report["results"]} == {
        ("a.tflite", 29), ("a.tflite", 30), ("b.tflite", 29), ("b.tflite", 30)}
    md = (out / "report.md").read_text()
    assert "| a.tflite | 30 | TfLiteNnapiDelegate[0-70] | TfLiteNnapiDelegate[0-70] | yes | yes |" in md
    assert "Result: **PASS**" in md


def test_disagreement_fails_even_when_one_side_says_single(tmp_path, models):
    probe = fake_tool(tmp_path / "probe.py", {"a.tflite": ONE, "b.tflite": SPLIT})
    check = fake_tool(tmp_path / "check.py", {"a.tflite": ONE, "b.tflite": ONE})
    proc, report, out = run(tmp_path, models, probe, check)
    assert proc.returncode == 1
    bad = [r for r in report["results"] if not r["ok"]]
    assert [(r["model"], r["agree"]) for r in bad] == [("b.tflite", False)]
    assert "AVERAGE_POOL_2D(61)" in (out / "report.md").read_text()


def test_agreeing_on_several_partitions_still_fails(tmp_path, models):
    tool = {"a.tflite": SPLIT, "b.tflite": ONE}
    # check_delegation exits 1 for "not one partition"; its plan still counts.
    proc, report, _ = run(tmp_path, models, fake_tool(tmp_path / "p.py", tool),
                          fake_tool(tmp_path / "c.py", tool, exit_code=1))
    assert proc.returncode == 1
    a = next(r for r in report["results"] if r["model"] == "a.tflite")
    assert a["agree"] is True and a["single_partition"] is False


def test_api_level_dependent_answers_are_compared_per_level(tmp_path, models):
    probe = fake_tool(tmp_path / "p.py", {"a.tflite@29": SPLIT, "a.tflite": ONE, "b.tflite": ONE})
    check = fake_tool(tmp_path / "c.py", {"a.tflite": ONE, "b.tflite": ONE})
    proc, report, _ = run(tmp_path, models, probe, check, "--api-levels", "29", "30")
    assert proc.returncode == 1
    assert [(r["model"], r["android_api"]) for r in report["results"] if not r["ok"]] == [("a.tflite", 29)]


def test_a_crashing_probe_is_reported_not_hidden(tmp_path, models):
    probe = fake_tool(tmp_path / "p.py", {"a.tflite": "crash", "b.tflite": ONE})
    check = fake_tool(tmp_path / "c.py", {"a.tflite": ONE, "b.tflite": ONE})
    proc, report, out = run(tmp_path, models, probe, check)
    assert proc.returncode == 1
    a = next(r for r in report["results"] if r["model"] == "a.tflite")
    assert a["probe"] is None and "exit 139: Segmentation fault" in a["probe_error"]
    assert "## Errors" in (out / "report.md").read_text()


@pytest.mark.parametrize("extra, fragment", [
    (["--api-levels", "26"], "API level 26 outside 27..35"),
    (["--models", "/nonexistent"], "no .tflite models in /nonexistent"),
])
def test_bad_usage_is_exit_2_and_writes_no_report(tmp_path, models, extra, fragment):
    tool = fake_tool(tmp_path / "t.py", {"a.tflite": ONE, "b.tflite": ONE})
    proc, report, out = run(tmp_path, models, tool, tool, *extra)
    assert proc.returncode == 2 and fragment in proc.stderr and report is None


def _reference_models():
    import os
    from pathlib import Path

    root = Path(os.environ.get("DEEPLAB_NNAPI_REFERENCE") or REPO_ROOT / ".." / "shared" / "reference")
    models = sorted((root / "models").glob("*.tflite"))
    if not models:
        pytest.skip(f"no reference models under {root}")
    return models


def test_real_check_delegation_output_is_what_verify_compares(tmp_path):
    """The verify stage as built: the real tools/check_delegation.py on reference models vs a probe plan."""
    models = tmp_path / "models"
    models.mkdir()
    for model in _reference_models()[:2]:
        (models / model.name).symlink_to(model)
    single = {m.name: ONE for m in models.iterdir()}
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--probe", fake_tool(tmp_path / "p.py", single),
                           "--models", str(models), "--api-levels", "29", "30", "--tf-version", "2.18",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert len(report["results"]) == 4 and all(r["single_partition"] for r in report["results"])

    split = {m.name: SPLIT for m in models.iterdir()}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--probe", fake_tool(tmp_path / "p2.py", split),
                           "--models", str(models), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert not any(r["agree"] for r in json.loads((out / "report.json").read_text())["results"])
