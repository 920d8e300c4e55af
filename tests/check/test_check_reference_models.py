"""The 8 reference models: one partition with our patch, the pool refused without it."""

from __future__ import annotations

import json

import pytest
from deeplab_nnapi.cli.check_delegation import main
from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model
from reference_support import REFERENCE_MODELS

MODEL_IDS = [p.name for p in REFERENCE_MODELS]
ALL_OPS = list(range(71))


def test_all_eight_reference_models_are_there(reference_models):
    """The parametrized tests below run once per model found: make sure all 8 were found."""
    assert len(reference_models) == 8, [p.name for p in reference_models]


@pytest.mark.parametrize("model", REFERENCE_MODELS, ids=MODEL_IDS)
def test_patched_api29_is_exactly_one_delegate_node(model):
    plan = check_model(model, DelegateOptions(android_api=29, delegate="patched"))
    assert [(n.type, n.ops, n.index) for n in plan.nodes] == [("TfLiteNnapiDelegate", ALL_OPS, 71)]
    assert plan.refused == []
    assert plan.single_partition


@pytest.mark.parametrize("model", REFERENCE_MODELS, ids=MODEL_IDS)
def test_stock_api29_refuses_the_image_pooling_average_pool(model):
    plan = check_model(model, DelegateOptions(android_api=29, delegate="stock"))
    # The only refusal: op 61, the image-pooling AVERAGE_POOL_2D (17x17 .. 65x65 > 256, quantized input)
    assert len(plan.refused) == 1
    refusal = plan.refused[0]
    assert (refusal.op, refusal.op_type) == (61, "AVERAGE_POOL_2D")
    assert refusal.reason.startswith("Large filter window would overflow on the reference CPU path")
    # The greedy partitioner pulls the aspp0 conv (it reads the same tensor as the pool) into the first
    # partition; everything after the pool is the second. Pascal: aspp0 = op 64; cityscapes/ade20k: op 62.
    aspp0 = 64 if "pascal" in model.name else 62
    rest = [i for i in range(62, 71) if i != aspp0]
    assert [(n.type, n.ops, n.index) for n in plan.nodes] == [
        ("TfLiteNnapiDelegate", list(range(61)) + [aspp0], 71),
        ("AVERAGE_POOL_2D", [61], 61),
        ("TfLiteNnapiDelegate", rest, 72),
    ]
    assert not plan.single_partition


def test_stock_with_accelerator_or_disallowed_cpu_skips_pool_check(reference_models):
    model = reference_models[0]
    assert check_model(model, DelegateOptions(delegate="stock", accelerator="qti-dsp")).single_partition
    assert check_model(model, DelegateOptions(delegate="stock", disallow_nnapi_cpu=True)).single_partition
    # the CPU reference named as accelerator does not count
    assert not check_model(
        model, DelegateOptions(delegate="stock", accelerator="nnapi-reference")
    ).single_partition
    # TF 2.0 / 2.1: only a named accelerator makes is_accelerator_specified true
    for tf in ("2.0", "2.1"):
        assert check_model(
            model, DelegateOptions(delegate="stock", accelerator="x", tf_version=tf)
        ).single_partition
        plan = check_model(model, DelegateOptions(delegate="stock", disallow_nnapi_cpu=True, tf_version=tf))
        assert not plan.single_partition and any("disallow_nnapi_cpu does not" in n for n in plan.notes)
    assert not check_model(
        model, DelegateOptions(delegate="stock", disallow_nnapi_cpu=True, tf_version="2.0")
    ).single_partition


def test_api28_refuses_nnapi12_features(pascal_513_os8):
    # NNAPI 1.1 (API 28): no ARG_MAX, no dilated depthwise conv (os8 uses dilation), float-only resize,
    # concat inputs must share quantization. The supported rest splits into more partitions than 3.
    plan = check_model(pascal_513_os8, DelegateOptions(android_api=28, delegate="patched"))
    refused = {r.op: r.reason for r in plan.refused}
    assert refused[70] == "Android sdk version less than 29"
    assert refused[63] == refused[68] == refused[69] == "NNAPI 1.0 & 1.1 only supports float input."
    dilated = [op for op, reason in refused.items() if reason.startswith("dilation_width_factor")]
    assert dilated == [25, 29, 33, 37, 40, 44, 48, 51, 55, 59]
    assert len(plan.delegate_nodes) == 3 and plan.not_delegated  # cut by max_number_delegated_partitions
    unlimited = check_model(
        pascal_513_os8, DelegateOptions(android_api=28, delegate="patched", max_partitions=0)
    )
    assert len(unlimited.delegate_nodes) > 3 and not unlimited.not_delegated


def test_cli_expect_single_partition_exit_codes(reference_models, capsys):
    paths = [str(p) for p in reference_models]
    assert main(paths + ["--expect-single-partition"]) == 0
    assert main(paths + ["--expect-single-partition", "--delegate", "stock"]) == 1
    assert main(paths + ["--delegate", "stock"]) == 0  # without the flag, a report is success
    out = capsys.readouterr().out
    assert "refused: op 61 AVERAGE_POOL_2D: Large filter window" in out


def test_cli_json_for_one_and_many_models(reference_models, capsys):
    assert main([str(reference_models[0]), "--json", "--delegate", "stock"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [n["type"] for n in data["nodes"]] == [
        "TfLiteNnapiDelegate",
        "AVERAGE_POOL_2D",
        "TfLiteNnapiDelegate",
    ]
    assert data["nodes"][1]["ops"] == [61]
    assert data["refused"][0]["op"] == 61 and data["refused"][0]["op_type"] == "AVERAGE_POOL_2D"
    assert data["single_partition"] is False
    assert data["options"]["delegate"] == "stock"
    assert main([str(p) for p in reference_models[:2]] + ["--json"]) == 0
    many = json.loads(capsys.readouterr().out)
    assert len(many["models"]) == 2 and many["all_single_partition"] is True
