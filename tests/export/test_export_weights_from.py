"""export_models --weights-from: the published models rebuilt through a DeepLab graph, tensor for tensor.

CI has no tensorflow/models checkout, so the graph comes from the stand-in tree the tests write
(``mnv2_deeplab_tree.py``: DeepLab v3 on a full MobileNetV2 in TF 1.x style, built by the same TF 2.x child
process as the real code). Everything else is what runs against the real tree: reading the model, the
variables with identity batch norms, the QAT ranges from scales and zero points, the folding, the
converter, the source form, verification, and the per-tensor comparison with the published model. The
same runs against the real tree are the opt-in ``realsource`` test and tests/benchmarks/bench_weights_from.py.
"""

from __future__ import annotations

import json

import pytest
from deeplab_nnapi.cli.export_models import main
from reference_support import MODELS_DIR

pytestmark = pytest.mark.tensorflow

PASCAL_257_OS16 = MODELS_DIR / "deeplabv3_mnv2_pascal_257_os16_quant.tflite"
CITY_513_OS16 = MODELS_DIR / "deeplabv3_mnv2_cityscapes_513_os16_dummy_quant.tflite"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    import mnv2_deeplab_tree

    return mnv2_deeplab_tree.write_tree(tmp_path_factory.mktemp("mnv2_tree"))


@pytest.fixture
def accept_tree(monkeypatch):
    """The tree the tests write carries no patch history: treat it as patched."""
    import deeplab_nnapi.patching.status as patcher

    monkeypatch.setattr(patcher, "tree_status",
                        lambda tree, target: patcher.TreeStatus("applied", f"{tree}: test tree"))


def _export(standin, out, *argv):
    return main(["--models-dir", str(standin), "--out", str(out), "--json", *argv])


def _entry(out, name):
    return json.loads((out / "manifest.json").read_text())["models"][name]


def _identical(f):
    assert f["identical"] and f["same_op_sequence"] and not f["unmatched_ops"] and not f["option_differences"]
    kinds = f["by_kind"]
    assert kinds["weights"]["tensors"] == 55 and kinds["bias"]["tensors"] == 55
    for kind, s in kinds.items():
        assert s["shape_differs"] == s["quantization_differs"] == s["differing_values"] == 0, (kind, s)


def test_published_pascal_model_comes_back_tensor_for_tensor(standin, accept_tree, tmp_path, capfd):
    out = tmp_path / "out"
    rc = _export(standin, out, "--weights-from", str(PASCAL_257_OS16), "--agreement")
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    (v,) = json.loads(cap.out)["variants"]
    assert v["name"] == "deeplabv3_mnv2_pascal_257_os16_quant"  # the table's variant of the model
    assert v["quantization"]["mode"] == "qat" and v["delegation"]["delegate_partitions"] == 1
    _identical(v["fidelity"])
    assert v["fidelity"]["by_kind"]["weights"]["values"] == 2080448
    agreement = v["agreement"]
    assert agreement["source_model"]["agreement_percent"] == 100.0
    assert agreement["float_graph"]["agreement_percent"] > 95.0
    assert len(agreement["float_graph"]["images"]) == 5
    entry = _entry(out, v["name"])
    src = entry["source"]
    assert src["weights"] == "tflite" and src["weights_from"]["file"] == PASCAL_257_OS16.name
    assert src["graph_build"]["qat"]["from_model"] == 120
    assert src["graph_build"]["qat"]["bias_scale_not_reproduced"] == []
    # what the TF 2.x converter does differently from the published model's, undone without changing the
    # arithmetic: the ReLUs the output range implies, the requantizing QUANTIZE in front of the
    # concatenation, the order of the two independent ASPP branches
    form = " | ".join(src["source_form"])
    assert "aspp0: fused RELU -> NONE" in form and "QUANTIZE" in form and "order" in form
    # our own export reads back as a source too (TF 2.x's tensor names: fused names joined with ';')
    from deeplab_nnapi.export import tflite_weights as tw

    ours, published = tw.read_source(out / f"{v['name']}.tflite"), tw.read_source(PASCAL_257_OS16)
    assert {k: q for k, (_, q) in ours.ranges.items()} == {k: q for k, (_, q) in published.ranges.items()}
    assert any(";" in t for t, _ in ours.ranges.values())
    # the comparison command agrees
    from deeplab_nnapi.cli.compare_models import main as compare

    assert compare([str(out / f"{v['name']}.tflite"), str(PASCAL_257_OS16), "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["identical"]


def test_published_dummy_model_comes_back_with_quantization_dummy(standin, accept_tree, tmp_path, capfd):
    out = tmp_path / "out"
    rc = _export(standin, out, "--weights-from", str(CITY_513_OS16), "--quantization", "dummy")
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    assert "warning: dummy quantization gives the published dummy-quantized form" in cap.err
    (v,) = json.loads(cap.out)["variants"]
    assert v["name"] == "deeplabv3_mnv2_cityscapes_513_os16_quant" and v["quantization"]["mode"] == "dummy"
    _identical(v["fidelity"])
    assert "source_form" not in _entry(out, v["name"])["source"]  # made by a TF 2.x converter already


def test_float_checkpoint_variant_is_calibrated_on_the_sample_photos_at_another_size(standin, accept_tree,
                                                                                      tmp_path, capfd):
    out = tmp_path / "out"
    rc = _export(standin, out, "--weights-from", str(CITY_513_OS16), "--crop-size", "129",
                 "--output-stride", "16")
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    assert "warning" not in cap.err
    (v,) = json.loads(cap.out)["variants"]
    assert v["name"] == "deeplabv3_mnv2_cityscapes_129_os16_quant"
    assert v["quantization"]["mode"] == "calibrated" and v["delegation"]["delegate_partitions"] == 1
    assert "fidelity" not in v  # another size: nothing to compare tensor by tensor
    entry = _entry(out, v["name"])
    assert entry["quantization"]["calibration"]["images_from"] == "sample photos"
    assert entry["input"]["shape"] == [1, 129, 129, 3] and entry["output"]["shape"] == [1, 129, 129]
    assert "--crop_size=129" in entry["export_flags"] and "--output_stride=16" in entry["export_flags"]


def test_rectangular_crop_and_stride_from_published_weights(standin, accept_tree, tmp_path, capfd):
    out = tmp_path / "out"
    rc = _export(standin, out, "--weights-from", str(PASCAL_257_OS16), "--crop-size", "161x321",
                 "--output-stride", "8", "--agreement")
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    (v,) = json.loads(cap.out)["variants"]
    assert v["name"] == "deeplabv3_mnv2_pascal_161x321_os8_quant"
    assert v["delegation"]["delegate_partitions"] == 1
    assert set(v["agreement"]) == {"float_graph"}  # no source model at this size
    assert v["agreement"]["float_graph"]["agreement_percent"] > 90.0
    entry = _entry(out, v["name"])
    assert entry["input"]["shape"] == [1, 161, 321, 3] and entry["output"]["shape"] == [1, 161, 321]


def _renamed(data: bytes, op: int, name: str) -> bytes:
    from deeplab_nnapi.fixer.model_io import read_model, write_model
    from deeplab_nnapi.nnapi.tflite_model import load_model

    index = load_model(data).operators[op].inputs[1]
    m = read_model(data)
    m.subgraphs[0].tensors[index].name = name.encode()
    return write_model(m, len(data))


@pytest.mark.parametrize("extra, message", [
    (["--variants", "deeplabv3_mnv2_cityscapes_513_os16_quant"],
     "gives 21 classes; variant deeplabv3_mnv2_cityscapes_513_os16_quant has 19"),
    (["--crop-size", "300"], "crop size 300 must be output_stride * k + 1"),
    (["--crop-size", "big"], "--crop-size 'big': expected N or HxW"),
    (["--weights", "random"], "--weights does not apply with --weights-from"),
    (["--images", "."], "--images applies only with --overlays or --agreement"),
])
def test_usage_errors_are_one_line(standin, accept_tree, tmp_path, capsys, extra, message):
    rc = _export(standin, tmp_path / "out", "--weights-from", str(PASCAL_257_OS16), *extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_model_that_does_not_fit_is_refused_with_its_first_tensor(standin, accept_tree, tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_renamed(PASCAL_257_OS16.read_bytes(), 12, "MobilenetV2/expanded_conv_3/shrink/weights"))
    assert _export(standin, tmp_path / "out", "--weights-from", str(bad)) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.tflite: tensor" in err and "'MobilenetV2/expanded_conv_3/shrink/weights'" in err
    assert "no DeepLab layer scope" in err and len(err.splitlines()) == 1


def test_agreement_needs_weights_from(standin, accept_tree, tmp_path, capsys):
    assert _export(standin, tmp_path / "out", "--weights", "random", "--agreement") == 2
    assert "--agreement applies only with --weights-from" in capsys.readouterr().err


def test_dummy_against_calibrated_on_the_float_graph(standin, tmp_path):
    """What dummy ranges cost, on the float graph of pascal's real weights (the stand-in tree): both
    uint8 models against the float graph in TensorFlow, labels on the sample photos."""
    from deeplab_nnapi.export import agreement as ag
    from deeplab_nnapi.export import tflite_weights as tw
    from deeplab_nnapi.export.convert import convert_frozen_graph, read_graph_def
    from deeplab_nnapi.export.deeplab_graph import build_frozen_graph, quantize_dummy
    from deeplab_nnapi.export.variants import load_variants

    variant = load_variants()["deeplabv3_mnv2_pascal_257_os16_quant"].with_quantization("calibrated")
    package = tmp_path / "w.npz"
    tw.write_package(tw.read_source(PASCAL_257_OS16), package)
    pb, _ = build_frozen_graph(standin, variant, tmp_path, weights="tflite", weights_package=package)
    conv = variant.converter
    photos = ag.photo_inputs(variant.crop)
    names, inputs = [n for n, _ in photos], [x for _, x in photos]
    ref = ag.float_labels(pb, inputs, input_array=conv.input_array, output_array=conv.output_array,
                          mean=conv.mean, std=conv.std)
    calibrated = convert_frozen_graph(pb.read_bytes(), conv, variant.crop, "calibrated",
                                      calibration_images=inputs).model
    req = {"input_array": conv.input_array, "output_array": conv.output_array,
           "default_ranges": list(conv.default_ranges)}
    dummy_gd, info = quantize_dummy(read_graph_def(pb), req)
    assert info["ranges"] == 120
    dummy = convert_frozen_graph(dummy_gd.SerializeToString(), conv, variant.crop, "dummy").model
    a_cal = ag.agreement("float", names, ag.model_labels(calibrated, inputs), ref)
    a_dum = ag.agreement("float", names, ag.model_labels(dummy, inputs), ref)
    print(f"\nagreement with the float graph on {len(names)} photos: calibrated {a_cal.percent:.2f} %, "
          f"dummy {a_dum.percent:.2f} % (dummy gives classes {a_dum.classes})")
    assert a_cal.percent > 90.0
    assert a_dum.percent < a_cal.percent - 20.0
    assert len(a_dum.classes) <= 2  # one class (plus at most one) for every pixel of every photo
