"""The variant table: the eight variants of issue 4, validation, selection, one-entry extension."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.export.variants import DEFAULT_TABLE, load_variants, parse_table, select

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXPECTED = {
    # name: (dataset, classes, crop, stride, quantization)
    "deeplabv3_mnv2_pascal_513_os8_quant": ("pascal_voc_2012", 21, 513, 8, "qat"),
    "deeplabv3_mnv2_pascal_513_os16_quant": ("pascal_voc_2012", 21, 513, 16, "qat"),
    "deeplabv3_mnv2_pascal_257_os8_quant": ("pascal_voc_2012", 21, 257, 8, "qat"),
    "deeplabv3_mnv2_pascal_257_os16_quant": ("pascal_voc_2012", 21, 257, 16, "qat"),
    # float checkpoints: calibrated by default (the published files are the dummy form, on request)
    "deeplabv3_mnv2_cityscapes_513_os8_quant": ("cityscapes", 19, 513, 8, "calibrated"),
    "deeplabv3_mnv2_cityscapes_513_os16_quant": ("cityscapes", 19, 513, 16, "calibrated"),
    "deeplabv3_mnv2_ade20k_513_os8_quant": ("ade20k", 151, 513, 8, "calibrated"),
    "deeplabv3_mnv2_ade20k_513_os16_quant": ("ade20k", 151, 513, 16, "calibrated"),
}


def _raw():
    return tomllib.loads(DEFAULT_TABLE.read_text())


def test_table_has_the_eight_variants():
    vs = load_variants()
    assert {n: (v.dataset, v.num_classes, v.crop_size, v.output_stride, v.quantization)
            for n, v in vs.items()} == EXPECTED
    for v in vs.values():
        assert v.converter.input_array == "MobilenetV2/MobilenetV2/input"
        assert v.converter.output_array == "ArgMax"
        assert (v.converter.mean, v.converter.std) == (128.0, 127.0)
        assert v.checkpoint is not None and v.checkpoint.url.startswith("http://download.tensorflow.org/")
        assert "--model_variant=mobilenet_v2" in v.export_flags
        assert ("--quantize_delay_step=0" in v.export_flags) == (v.quantization == "qat")
        assert v.checkpoint.quantization_aware == (v.quantization == "qat")


def test_table_matches_reference_models_io():
    """The converter settings give what the published models take: scale 1/127, zero point 128."""
    v = load_variants()["deeplabv3_mnv2_pascal_513_os8_quant"]
    assert abs(1.0 / v.converter.std - 0.007874015718698502) < 1e-9
    assert round(v.converter.mean) == 128


def test_new_variant_is_one_entry(tmp_path: Path):
    text = DEFAULT_TABLE.read_text() + """
[[variant]]
name = "deeplabv3_mnv2_pascal_385_os16_quant"
dataset = "pascal_voc_2012"
num_classes = 21
crop_size = 385
output_stride = 16
quantization = "qat"
checkpoint = "pascal_train_aug_8bit"
export_flags = ["--model_variant=mobilenet_v2", "--quantize_delay_step=0", "--num_classes=21",
                "--crop_size=385", "--crop_size=385", "--output_stride=16"]
"""
    p = tmp_path / "variants.toml"
    p.write_text(text)
    vs = load_variants(p)
    assert len(vs) == 9 and vs["deeplabv3_mnv2_pascal_385_os16_quant"].input_shape == (1, 385, 385, 3)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["variant"][0].update(quantization="int4"), "quantization must be one of"),
    (lambda d: d["variant"][1].update(name=d["variant"][0]["name"]), "duplicate name"),
    (lambda d: d["variant"][0].update(crop_size=500), "crop_size must be output_stride"),
    (lambda d: d["variant"][0].update(num_classes=20), "--num_classes"),
    (lambda d: d["variant"][0].update(output_stride=16), "--output_stride"),
    (lambda d: d["variant"][4].update(quantization="qat"), "quantization-aware checkpoint"),
    (lambda d: d["variant"][0].update(checkpoint="nope"), "unknown checkpoint"),
    (lambda d: d["variant"][0]["export_flags"].append("--export_path=/tmp/x"), "must not set"),
    (lambda d: d["checkpoint"]["ade20k_train"].update(sha256="abc"), "64 hex digits"),
    (lambda d: d["variant"][0].update(colour="blue"), "unknown key"),
    (lambda d: d["converter"].update(std=0), "std must be > 0"),
    (lambda d: d["converter"].update(qat_fallback_default_ranges="yes"), "true or false"),
])
def test_table_validation(edit, message):
    data = _raw()
    edit(data)
    with pytest.raises(UsageError, match=message):
        parse_table(data)


def test_select():
    vs = load_variants()
    assert [v.name for v in select(vs, "all")] == list(EXPECTED)
    two = "deeplabv3_mnv2_ade20k_513_os16_quant,deeplabv3_mnv2_pascal_257_os8_quant"
    assert [v.name for v in select(vs, two + ",deeplabv3_mnv2_ade20k_513_os16_quant")] == two.split(",")
    with pytest.raises(UsageError) as e:
        select(vs, "deeplabv3_mnv2_pascal_513_os8_quant,bogus")
    msg = str(e.value)
    assert "bogus" in msg and all(n in msg for n in EXPECTED) and "\n" not in msg


def test_cli_unknown_variant_exit_2(tmp_path, capsys):
    from deeplab_nnapi.cli.export_models import main

    rc = main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--variants", "bogus"])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "bogus" in err
    assert "deeplabv3_mnv2_pascal_513_os8_quant" in err
    assert not (tmp_path / "o").exists()


def test_cli_needs_one_source(tmp_path, capsys):
    from deeplab_nnapi.cli.export_models import main

    assert main(["--out", str(tmp_path)]) == 2
    assert "exactly one of" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--from-graph", "g.pb", "--variants", "all"], "--variants applies only with --models-dir"),
    (["--from-graph", "g.pb", "--allow-unpinned"], "--allow-unpinned applies only with --models-dir"),
    (["--from-graph", "g.pb", "--weights-from", "m.tflite"], "--weights-from applies only with --models-dir"),
    (["--from-graph", "g.pb", "--crop-size", "769"], "--crop-size applies only with --models-dir"),
    (["--models-dir", ".", "--num-classes", "19"], "--num-classes applies only with --from-graph"),
])
def test_cli_mode_specific_options(tmp_path, capsys, argv, message):
    from deeplab_nnapi.cli.export_models import main

    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_list_variants(capsys):
    from deeplab_nnapi.cli.export_models import main

    assert main(["--out", "unused", "--list-variants"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 8 and out[0].startswith("deeplabv3_mnv2_pascal_513_os8_quant")


def test_models_dir_refused_with_real_checker(tmp_path, capsys):
    """A tree without our DeepLab patches: exit 2, one line, the apply command suggested."""
    from deeplab_nnapi.cli.export_models import main

    models = tmp_path / "models"
    (models / "research" / "deeplab").mkdir(parents=True)
    (models / "research" / "deeplab" / "export_model.py").write_text("# not patched\n")
    rc = main(["--models-dir", str(models), "--out", str(tmp_path / "o"),
               "--variants", "deeplabv3_mnv2_pascal_257_os16_quant"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1
    assert f"python tools/apply_patches.py --models-dir {models}" in err
    assert not (tmp_path / "o").exists()


def test_models_dir_refused_when_applicable(tmp_path, capsys, monkeypatch):
    import deeplab_nnapi.patching.status as patcher
    from deeplab_nnapi.cli.export_models import main

    monkeypatch.setattr(patcher, "tree_status",
                        lambda tree, target: patcher.TreeStatus("applicable", f"{tree}: not patched yet"))
    rc = main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "state applicable" in err and "apply_patches.py" in err
