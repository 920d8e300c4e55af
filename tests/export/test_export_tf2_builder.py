"""export_models --models-dir on TF 2.x: the graph built by the child process from a tree the tests write,
with random weights and from a quantization-aware checkpoint served over HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from deeplab_nnapi.cli.export_models import main

pytestmark = pytest.mark.tensorflow


@pytest.fixture
def accept_tree(monkeypatch):
    """The tree the tests write carries no patch history: treat it as patched."""
    import deeplab_nnapi.patching.status as patcher

    monkeypatch.setattr(patcher, "tree_status",
                        lambda tree, target: patcher.TreeStatus("applied", f"{tree}: test tree"))


def _table(tmp_path, url="http://127.0.0.1:9/none.tar.gz", sha="", extra_flags=""):
    import fake_deeplab_tree as fake

    text = fake.variant_table(url, sha)
    if extra_flags:
        text = text.replace('"--quantize_delay_step=0"]', f'"--quantize_delay_step=0", "{extra_flags}"]')
    p = tmp_path / "variants.toml"
    p.write_text(text)
    return p


def test_random_weights_build_convert_and_verify_one_partition(tiny_qat, accept_tree, tmp_path, capfd):
    out = tmp_path / "out"
    rc = main(["--models-dir", str(tiny_qat.tree), "--out", str(out), "--variant-table",
               str(_table(tmp_path)), "--variants", "tiny_qat", "--weights", "random", "--json"])
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    res = json.loads(cap.out)
    (v,) = res["variants"]
    assert v["ok"] and v["delegation"]["delegate_partitions"] == 1
    assert set(v["stage_seconds"]) == {"graph", "convert", "verify", "write"}
    entry = json.loads((out / "manifest.json").read_text())["models"]["tiny_qat"]
    src = entry["source"]
    assert src["builder"] == "tf2-compat" and src["weights"] == "random" and "checkpoint" not in src
    build = src["graph_build"]
    assert build["qat"]["source"].startswith("measured") and build["qat"]["ranges"] == 33
    assert build["qat"]["shared_concat_ranges"] == [["aspp0/act_quant", "image_pooling/act_quant"]]
    assert entry["tool_versions"]["tf-slim"] and entry["tool_versions"]["tf-keras"]
    # TF's own log stayed in the child's log file: stderr holds only our progress lines
    assert "tensorflow" not in cap.err.lower() and "absl" not in cap.err.lower(), cap.err
    assert not list(tiny_qat.tree.rglob("__pycache__"))


def test_qat_checkpoint_ranges_reach_the_model(tiny_qat, accept_tree, tmp_path, http_server, capfd):
    url, state = http_server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in tiny_qat.checkpoint.parent.iterdir():
            tar.add(f, arcname=f"ckpt/{f.name}")
    state.files["/tiny.tar.gz"] = buf.getvalue()
    table = _table(tmp_path, f"{url}/tiny.tar.gz", hashlib.sha256(buf.getvalue()).hexdigest())
    out = tmp_path / "out"
    rc = main(["--models-dir", str(tiny_qat.tree), "--out", str(out), "--variant-table", str(table),
               "--variants", "tiny_qat", "--checkpoint-dir", str(tmp_path / "cache"), "--json", "--quiet"])
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    entry = json.loads((out / "manifest.json").read_text())["models"]["tiny_qat"]
    assert entry["source"]["weights"] == "checkpoint" and entry["source"]["checkpoint"] == "tiny_8bit"
    q = entry["source"]["graph_build"]["qat"]
    assert q["source"] == "checkpoint" and q["from_checkpoint"] == 33 and q["default_range"] == []
    assert entry["delegation"]["delegate_partitions"] == 1 and entry["input"]["zero_point"] == 128


def test_child_error_is_one_line_and_the_variant_fails(tiny_qat, accept_tree, tmp_path, capfd):
    table = _table(tmp_path, extra_flags="--no_such_flag=1")
    rc = main(["--models-dir", str(tiny_qat.tree), "--out", str(tmp_path / "out"), "--variant-table",
               str(table), "--variants", "tiny_qat", "--weights", "random", "--json"])
    cap = capfd.readouterr()
    assert rc == 1
    (v,) = json.loads(cap.out)["variants"]
    assert v["stage"] == "graph" and "export flags" in v["error"] and "no_such_flag" in v["error"]
    assert "\n" not in v["error"] and "Traceback" not in cap.err
    assert not (tmp_path / "out" / "tiny_qat.tflite").exists()


@pytest.mark.parametrize("argv, message", [
    (["--weights", "random", "--export-python", "python3"],
     "--weights random needs the TF 2.x graph builder"),
    (["--seed", "3"], "--seed applies only with --weights random"),
])
def test_weights_options_usage_errors(tiny_qat, accept_tree, tmp_path, capsys, argv, message):
    rc = main(["--models-dir", str(tiny_qat.tree), "--out", str(tmp_path / "o"), "--variant-table",
               str(_table(tmp_path)), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_weights_option_needs_models_dir(tmp_path, capsys):
    assert main(["--from-graph", "g.pb", "--out", str(tmp_path), "--weights", "random"]) == 2
    assert "--weights applies only with --models-dir" in capsys.readouterr().err


@pytest.mark.parametrize("env, major, want", [
    ({"DEEPLAB_EXPORT_PYTHON": "/opt/tf1/bin/python"}, 2, "/opt/tf1/bin/python"),
    ({}, 1, "self"),  # this Python has TF 1.x: export_model.py runs here
    ({}, 2, None),    # TF 2.x: the built-in builder
])
def test_which_builder_by_default(monkeypatch, env, major, want):
    import sys

    from deeplab_nnapi.export import pipeline

    monkeypatch.delenv("DEEPLAB_EXPORT_PYTHON", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(pipeline, "installed_tensorflow_major", lambda: major)
    assert pipeline.default_export_python() == (sys.executable if want == "self" else want)


def test_tf2_builder_needs_tf_slim_and_tf_keras(monkeypatch):
    from deeplab_nnapi.errors import UsageError
    from deeplab_nnapi.export import pipeline

    real = pipeline._dist_version
    monkeypatch.setattr(pipeline, "_dist_version", lambda *n: None if n == ("tf-slim",) else real(*n))
    with pytest.raises(UsageError, match=r"needs tf-slim: pip install 'deeplab-nnapi\[export\]'"):
        pipeline.check_tf2_builder()
