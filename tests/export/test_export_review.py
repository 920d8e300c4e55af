"""Regressions found by review of export_models: options checked before any work (exit 2, one line),
--list-variants without --out, a manifest write failure, an unexpected error in one variant."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from deeplab_nnapi.cli.export_models import main
from deeplab_nnapi.export import pipeline as ex
from deeplab_nnapi.export.variants import ad_hoc_variant
from export_graphs import NUM_CLASSES, SIZE


def _one_line_error(capsys) -> str:
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert cap.out == "" and len(lines) == 1 and "Traceback" not in cap.err, cap.err
    return lines[0]


def test_list_variants_needs_no_out(capsys):
    assert main(["--list-variants"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8
    assert main(["--list-variants", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and {"name", "dataset", "crop_size"} <= set(rows[0])


def test_export_without_out_is_one_line(tmp_path, capsys):
    assert main(["--from-graph", str(tmp_path / "g.pb")]) == 2
    assert "--out" in _one_line_error(capsys)


@pytest.mark.parametrize("option", ["--out", "--checkpoint-dir"])
def test_dir_option_naming_a_file_is_refused_before_any_work(tmp_path, capsys, option):
    afile = tmp_path / "afile"
    afile.write_bytes(b"keep me")
    base = ["--models-dir", str(tmp_path)] if option == "--checkpoint-dir" else ["--from-graph", "g.pb"]
    out = ["--out", str(tmp_path / "o")] if option == "--checkpoint-dir" else []
    for value in (afile, afile / "sub"):
        assert main([*base, *out, option, str(value)]) == 2
        assert "not a directory" in _one_line_error(capsys)
    assert afile.read_bytes() == b"keep me" and not (tmp_path / "o").exists()


def test_from_graph_directory_is_named_as_such(tmp_path, capsys):
    assert main(["--from-graph", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "is a directory" in _one_line_error(capsys)


def test_from_graph_size_options_only_with_from_graph(tmp_path, capsys):
    for opt in ("--num-classes", "--input-size"):
        assert main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "o"), opt, "5"]) == 2
        assert f"{opt} applies only with --from-graph" in _one_line_error(capsys)


def test_models_dir_that_is_not_a_models_tree_names_the_option_once(tmp_path, capsys):
    assert main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    line = _one_line_error(capsys)
    assert "tensorflow/models tree" in line and f"--models-dir {tmp_path}: --models-dir" not in line


# ---------------------------------------------------------------------------------------- with TensorFlow


def _need_tf():
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")


def test_unreadable_graph_is_bad_input_with_any_quantization(tmp_path, capsys):
    _need_tf()
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xffnot a graph" * 3)
    for q in ("dummy", "qat"):
        assert main(["--from-graph", str(bad), "--out", str(tmp_path / "o"), "--quantization", q,
                     "--json", "--quiet"]) == 2
        assert "not a frozen GraphDef" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_missing_array_is_bad_input(graphs, tmp_path, capsys):
    _need_tf()
    for opt in ("--input-array", "--output-array"):
        assert main(["--from-graph", str(graphs[("patched", "float")]), "--out", str(tmp_path / "o"),
                     opt, "no_such_node", "--quiet"]) == 2
        assert "no_such_node" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_bad_calibration_image_is_bad_input_before_any_work(graphs, calibration_dir, tmp_path, capsys):
    _need_tf()
    import numpy as np

    cal = tmp_path / "cal"
    cal.mkdir()
    for p in calibration_dir.iterdir():
        (cal / p.name).write_bytes(p.read_bytes())
    np.save(cal / "zz_bad.npy", np.zeros((4, 4)))
    assert main(["--from-graph", str(graphs[("patched", "float")]), "--out", str(tmp_path / "o"),
                 "--calibration-images", str(cal), "--num-classes", str(NUM_CLASSES),
                 "--input-size", str(SIZE), "--quiet"]) == 2
    assert "zz_bad.npy" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_manifest_write_failure_leaves_no_undescribed_model(graphs, tmp_path, monkeypatch):
    _need_tf()
    out = tmp_path / "out"
    good = ad_hoc_variant("m", NUM_CLASSES, SIZE, "qat")
    qat = graphs[("patched", "qat")]
    [o] = ex.run([good], out, lambda v, w: (qat, {}), progress=False)
    assert o.ok
    before_model = (out / "m.tflite").read_bytes()
    before_manifest = (out / "manifest.json").read_bytes()
    (out / "m.tflite").write_bytes(b"an older verified model")  # must come back byte for byte
    os.utime(out / "m.tflite")
    old_bytes = (out / "m.tflite").read_bytes()
    other = ad_hoc_variant("n", NUM_CLASSES, SIZE, "qat")

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ex, "write_manifest", full_disk)
    o1, o2 = ex.run([good, other], out, lambda v, w: (qat, {}), progress=False)
    for o in (o1, o2):
        assert not o.ok and o.stage == "write" and "No space left" in o.error, o
    assert (out / "m.tflite").read_bytes() == old_bytes != before_model
    assert not (out / "n.tflite").exists()
    assert (out / "manifest.json").read_bytes() == before_manifest
    assert sorted(p.name for p in out.iterdir()) == ["m.tflite", "manifest.json"]


def test_unexpected_error_fails_that_variant_and_the_next_still_runs(graphs, tmp_path):
    _need_tf()
    vs = [ad_hoc_variant(n, NUM_CLASSES, SIZE, "qat") for n in ("boom", "fine")]

    def provider(variant, workdir: Path):
        if variant.name == "boom":
            raise RuntimeError("something\nunexpected")
        return graphs[("patched", "qat")], {}

    o1, o2 = ex.run(vs, tmp_path / "out", provider, progress=False)
    assert not o1.ok and o1.stage == "graph" and o1.error == "unexpected RuntimeError: something unexpected"
    assert o2.ok
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fine.tflite", "manifest.json"]


def test_progress_and_summary_print_errors_and_paths_as_text(tmp_path, capsys):
    """Converter messages hold brackets ('[/job:localhost/...]'): rich must not read them as markup."""
    from deeplab_nnapi.cli.export_models import _summary

    bad = ex.Outcome("m", stage="convert", error="node [/job:localhost] failed [bold]")
    deep = tmp_path / ("a" * 60) / "m.tflite"
    good = ex.Outcome("n", ok=True, stage="done", path=deep,
                      entry={"quantization": {"mode": "qat"}, "delegation": {"delegate_partitions": 1},
                             "size": 10})
    rep = ex.Reporter(2)
    rep.start("m")
    rep.stage("checkpoint [/x]")
    rep.done(bad)
    rep.done(good)
    _summary([bad, good], json_out=False)
    cap = capsys.readouterr()
    assert "checkpoint [/x] ..." in cap.err and "node [/job:localhost] failed [bold]" in cap.err
    assert "m failed at convert: node [/job:localhost] failed [bold]" in cap.out
    assert f"n: {deep}" in cap.out  # the whole path, though the table truncates it


@pytest.mark.parametrize("onednn", ["1", None])
def test_quiet_json_run_prints_only_json(graphs, tmp_path, onednn):
    """--quiet --json: stdout is the JSON report, stderr stays empty. TensorFlow's native lines (absl's
    "All log messages before absl::InitializeLog()", "oneDNN custom operations are on", the CUDA probe) and
    LiteRT's XNNPACK INFO line must not leak, whatever the machine: the noisy path is forced on here
    (oneDNN on, no TF_CPP_MIN_LOG_LEVEL) so the outcome does not depend on the CPU."""
    _need_tf()
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "DEEPLAB_NNAPI_NATIVE_LOGS")}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    script = Path(__file__).resolve().parents[2] / "tools" / "export_models.py"
    args = [sys.executable, str(script), "--from-graph", str(graphs[("patched", "qat")]),
            "--out", str(tmp_path / "o"), "--num-classes", str(NUM_CLASSES), "--input-size", str(SIZE)]
    r = subprocess.run([*args, "--quiet", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout)["ok"] is True
    # the pass-through switch shows that the native lines were there to be silenced in the first place
    env["DEEPLAB_NNAPI_NATIVE_LOGS"] = "1"
    r = subprocess.run([*args, "--out", str(tmp_path / "o2"), "--quiet", "--json"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr != ""
