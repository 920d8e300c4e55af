"""The export pipeline end to end: --from-graph, manifest, failures midway, the --models-dir path with a
stand-in export_model.py and a checkpoint served over local HTTP (TensorFlow needed)."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from deeplab_nnapi.cli.export_models import main
from deeplab_nnapi.export import pipeline as ex
from deeplab_nnapi.export.variants import ad_hoc_variant

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

SIZE, CLASSES = 129, 5


def _files(d: Path):
    return sorted(p.name for p in d.iterdir())


def _check_manifest_entry(out: Path, name: str, mode: str):
    manifest = json.loads((out / "manifest.json").read_text())
    e = manifest["models"][name]
    data = (out / e["file"]).read_bytes()
    assert e["sha256"] == hashlib.sha256(data).hexdigest() and e["size"] == len(data)
    assert e["input"]["shape"] == [1, SIZE, SIZE, 3] and e["input"]["dtype"] == "uint8"
    assert e["input"]["zero_point"] == 128 and abs(e["input"]["scale"] - 1 / 127) < 1e-7
    assert e["output"] == {"name": "ArgMax", "shape": [1, SIZE, SIZE], "dtype": "int32"}
    assert e["quantization"]["mode"] == mode
    assert e["delegation"] == {"delegate": "patched", "android_api": 29, "delegate_partitions": 1,
                               "plan_nodes": 1, "single_partition": True}
    assert e["num_classes"] == CLASSES
    tv = manifest["tool_versions"]
    assert tv["deeplab-nnapi"] and tv["tensorflow (converter)"] and tv["ai-edge-litert"]
    return manifest, e


def _from_graph(graph, out, *extra):
    return main(["--from-graph", str(graph), "--out", str(out), "--num-classes", str(CLASSES),
                 "--input-size", str(SIZE), "--quiet", *extra])


def test_from_graph_qat_autodetected(graphs, tmp_path, capsys):
    out = tmp_path / "out"
    rc = _from_graph(graphs[("patched", "qat")], out, "--name", "m_qat", "--json")
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["ok"]
    assert _files(out) == ["m_qat.tflite", "manifest.json"]
    _, e = _check_manifest_entry(out, "m_qat", "qat")
    assert res["variants"][0]["sha256"] == e["sha256"]
    assert e["source"]["graph_sha256"] == hashlib.sha256(graphs[("patched", "qat")].read_bytes()).hexdigest()


def test_from_graph_dummy_and_calibrated(graphs, calibration_dir, tmp_path):
    out = tmp_path / "out"
    assert _from_graph(graphs[("patched", "float")], out, "--name", "m_dummy") == 0
    assert _from_graph(graphs[("patched", "float")], out, "--name", "m_cal",
                       "--calibration-images", str(calibration_dir)) == 0
    assert _files(out) == ["m_cal.tflite", "m_dummy.tflite", "manifest.json"]
    _, e = _check_manifest_entry(out, "m_dummy", "dummy")
    assert e["quantization"]["default_ranges"] == [0.0, 6.0]
    manifest, e = _check_manifest_entry(out, "m_cal", "calibrated")
    assert e["quantization"]["calibration"]["images"] == 4
    assert set(manifest["models"]) == {"m_dummy", "m_cal"}  # the second run kept the first entry


def test_from_graph_upstream_shape_fails_without_file(graphs, tmp_path, capsys):
    out = tmp_path / "out"
    rc = _from_graph(graphs[("upstream", "qat")], out, "--name", "up", "--json")
    res = json.loads(capsys.readouterr().out)
    assert rc == 1 and not res["ok"]
    v = res["variants"][0]
    assert v["stage"] == "verify" and "not one partition" in v["error"]
    assert any("align_corners" in r for r in v["refusals"]) and any("ARG_MAX" in r for r in v["refusals"])
    assert _files(out) == []  # no model, no temp file, no manifest


def test_from_graph_bad_input_exit_2(tmp_path, capsys):
    assert _from_graph(tmp_path / "missing.pb", tmp_path / "o") == 2
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xffnot a graph" * 3)
    assert _from_graph(bad, tmp_path / "o") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such file" in err[0] and "not a frozen GraphDef" in err[1]


def test_failure_midway_leaves_first_intact(graphs, tmp_path):
    """Second of three variants fails verification, third fails conversion: first stays, no partials."""
    out = tmp_path / "out"
    vs = [ad_hoc_variant(n, CLASSES, SIZE, "qat") for n in ("first", "second", "third")]
    source = {"first": ("patched", "qat"), "second": ("upstream", "qat"), "third": ("patched", "float")}

    def provider(variant, workdir):
        return graphs[source[variant.name]], {"graph_file": "test"}

    outcomes = ex.run(vs, out, provider, progress=False)
    assert [o.ok for o in outcomes] == [True, False, False]
    assert outcomes[1].stage == "verify" and "not one partition" in outcomes[1].error
    assert outcomes[2].stage == "convert" and "FakeQuant" in outcomes[2].error  # float graph as 'qat'
    assert _files(out) == ["first.tflite", "manifest.json"]
    manifest, _ = _check_manifest_entry(out, "first", "qat")
    assert list(manifest["models"]) == ["first"]


def test_conversion_failure_keeps_earlier_good_file(graphs, tmp_path):
    out = tmp_path / "out"
    good = ad_hoc_variant("m", CLASSES, SIZE, "qat")
    [o] = ex.run([good], out, lambda v, w: (graphs[("patched", "qat")], {}), progress=False)
    before = (out / "m.tflite").read_bytes()
    entry = json.loads((out / "manifest.json").read_text())["models"]["m"]

    from dataclasses import replace

    from deeplab_nnapi.export.variants import ConverterSettings

    broken = replace(good, converter=ConverterSettings(output_array="no_such_node"))
    [o] = ex.run([broken], out, lambda v, w: (graphs[("patched", "qat")], {}), progress=False)
    assert not o.ok and o.stage == "convert" and "no_such_node" in o.error
    assert (out / "m.tflite").read_bytes() == before
    assert json.loads((out / "manifest.json").read_text())["models"]["m"] == entry
    assert _files(out) == ["m.tflite", "manifest.json"]


# ----------------------------------------------------------------------------------------------------
# --models-dir: stand-in export_model.py, checkpoint over HTTP

FAKE_EXPORT = textwrap.dedent('''
    """Stand-in for deeplab/export_model.py: checks its flags, copies a prepared frozen graph."""
    import shutil, sys
    flags = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    open(flags["checkpoint_path"] + ".index", "rb").close()  # the extracted checkpoint is there
    if flags.get("fake_fail"):
        print("Traceback ...\\nValueError: fake export failure", file=sys.stderr)
        sys.exit(3)
    assert flags["model_variant"] == "mobilenet_v2"
    shutil.copy(flags["fake_graph"], flags["export_path"])
''')

TABLE = textwrap.dedent('''
    schema = 1
    [converter]
    input_array = "MobilenetV2/MobilenetV2/input"
    output_array = "ArgMax"
    mean = 128.0
    std = 127.0
    default_ranges_min = 0.0
    default_ranges_max = 6.0

    [checkpoint.test_float]
    url = "{url}/ckpt_8bit.tar.gz"
    sha256 = "{sha}"
    member_dir = "ckpt_8bit"

    [checkpoint.test_8bit]
    url = "{url}/ckpt_8bit.tar.gz"
    sha256 = "{sha}"
    member_dir = "ckpt_8bit"
    quantization_aware = true

    [[variant]]
    name = "good"
    dataset = "test"
    num_classes = 5
    crop_size = 129
    output_stride = 8
    quantization = "qat"
    checkpoint = "test_8bit"
    export_flags = ["--model_variant=mobilenet_v2", "--quantize_delay_step=0", "--num_classes=5",
                    "--crop_size=129", "--crop_size=129", "--fake_graph={good}"]

    [[variant]]
    name = "float_dummy"
    dataset = "test"
    num_classes = 5
    crop_size = 129
    output_stride = 8
    quantization = "dummy"
    checkpoint = "test_float"
    export_flags = ["--model_variant=mobilenet_v2", "--num_classes=5",
                    "--crop_size=129", "--crop_size=129", "--fake_graph={good_float}"]

    [[variant]]
    name = "unpatched"
    dataset = "test"
    num_classes = 5
    crop_size = 129
    output_stride = 8
    quantization = "qat"
    checkpoint = "test_8bit"
    export_flags = ["--model_variant=mobilenet_v2", "--quantize_delay_step=0", "--num_classes=5",
                    "--crop_size=129", "--crop_size=129", "--fake_graph={bad}"]

    [[variant]]
    name = "crashing"
    dataset = "test"
    num_classes = 5
    crop_size = 129
    output_stride = 8
    quantization = "qat"
    checkpoint = "test_8bit"
    export_flags = ["--model_variant=mobilenet_v2", "--quantize_delay_step=0", "--num_classes=5",
                    "--crop_size=129", "--crop_size=129", "--fake_graph={good}", "--fake_fail=1"]
''')


@pytest.fixture
def models_setup(tmp_path, graphs, http_server, monkeypatch):
    import deeplab_nnapi.patching.status as patcher

    url, st = http_server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("ckpt_8bit/model.ckpt.index", "ckpt_8bit/model.ckpt.data-00000-of-00001"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"ckpt"))
    st.files["/ckpt_8bit.tar.gz"] = buf.getvalue()
    models = tmp_path / "models"
    (models / "research" / "deeplab").mkdir(parents=True)
    (models / "research" / "slim").mkdir()
    (models / "research" / "deeplab" / "export_model.py").write_text(FAKE_EXPORT)
    table = tmp_path / "variants.toml"
    table.write_text(TABLE.format(url=url, sha=hashlib.sha256(buf.getvalue()).hexdigest(),
                                  good=graphs[("patched", "qat")], bad=graphs[("upstream", "qat")],
                                  good_float=graphs[("patched", "float")]))
    monkeypatch.setattr(patcher, "tree_status",
                        lambda tree, target: patcher.TreeStatus("applied", f"{tree}: carries test patches"))
    return models, table, st


def test_models_dir_pipeline(models_setup, tmp_path, capsys):
    models, table, st = models_setup
    out = tmp_path / "out"
    rc = main(["--models-dir", str(models), "--out", str(out), "--variant-table", str(table),
               "--checkpoint-dir", str(tmp_path / "cache"), "--export-python", sys.executable, "--json",
               "--quiet", "--variants", "good,unpatched,crashing"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 1
    by = {v["name"]: v for v in res["variants"]}
    assert by["good"]["ok"]
    assert not by["unpatched"]["ok"] and by["unpatched"]["stage"] == "verify"
    assert not by["crashing"]["ok"] and by["crashing"]["stage"] == "graph"
    assert "fake export failure" in by["crashing"]["error"]
    assert _files(out) == ["good.tflite", "manifest.json"]
    manifest, e = _check_manifest_entry(out, "good", "qat")
    assert e["source"]["checkpoint"] == "test_8bit" and e["source"]["checkpoint_pinned"] is True
    assert "--quantize_delay_step=0" in e["export_flags"]
    assert manifest["tool_versions"]["tensorflow (export_model.py)"]
    assert len([r for r in st.requests if r[0] == "/ckpt_8bit.tar.gz"]) == 1  # downloaded once for three


def test_models_dir_unpinned_checkpoint_refused(models_setup, tmp_path, capsys):
    models, table, st = models_setup
    text = table.read_text()
    import re

    table.write_text(re.sub(r'sha256 = "[0-9a-f]+"', 'sha256 = ""', text))
    rc = main(["--models-dir", str(models), "--out", str(tmp_path / "out"), "--variant-table", str(table),
               "--checkpoint-dir", str(tmp_path / "cache"), "--export-python", sys.executable, "--json",
               "--quiet", "--variants", "good"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 1 and "no pinned sha256" in res["variants"][0]["error"]
    assert st.requests == []
    rc = main(["--models-dir", str(models), "--out", str(tmp_path / "out"), "--variant-table", str(table),
               "--checkpoint-dir", str(tmp_path / "cache"), "--export-python", sys.executable, "--json",
               "--quiet", "--variants", "good", "--allow-unpinned"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0
    e = json.loads((tmp_path / "out" / "manifest.json").read_text())["models"]["good"]
    assert e["source"]["checkpoint_pinned"] is False and len(e["source"]["checkpoint_sha256"]) == 64


def test_models_dir_calibrates_dummy_variants(models_setup, tmp_path, calibration_dir, capsys):
    models, table, st = models_setup
    out = tmp_path / "out"
    rc = main(["--models-dir", str(models), "--out", str(out), "--variant-table", str(table),
               "--checkpoint-dir", str(tmp_path / "cache"), "--export-python", sys.executable, "--quiet",
               "--variants", "float_dummy,good", "--calibration-images", str(calibration_dir)])
    assert rc == 0, capsys.readouterr()
    _, e = _check_manifest_entry(out, "float_dummy", "calibrated")  # the dummy variant got real ranges
    assert e["quantization"]["calibration"]["images"] == 4
    _check_manifest_entry(out, "good", "qat")  # a qat variant keeps its checkpoint's ranges
    assert "summary" in capsys.readouterr().out
