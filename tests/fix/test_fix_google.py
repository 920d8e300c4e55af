"""The acceptance: the eight Google-shaped models become one stock-delegate partition each (API 29, TF 2.21
rules), with the rewrites the issue names, and label agreement >= 99.9 % on the sample photos."""

from __future__ import annotations

import pytest
from deeplab_nnapi.fixer.agreement import compare, label_maps
from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes
from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model

OPTIONS = FixOptions(android_api=29, tf_version="2.21", delegate="stock")


def test_google_shaped_models_are_refused_before(google_models):
    assert len(google_models) == 8
    for name, data in google_models.items():
        plan = check_model(data, DelegateOptions(android_api=29, delegate="stock", tf_version="2.21"))
        kinds = sorted(r.op_type for r in plan.refused)
        assert kinds == ["ARG_MAX", "AVERAGE_POOL_2D"] + ["RESIZE_BILINEAR"] * 3, name
        assert len(plan.nodes) == 8 and len(plan.delegate_nodes) == 3, name


@pytest.fixture(scope="module")
def fixed(google_models):
    return {name: fix_bytes(data, OPTIONS, name) for name, data in google_models.items()}


def test_each_becomes_one_partition(fixed):
    for name, result in fixed.items():
        assert result.after.single_partition, (name, [n.type for n in result.after.nodes])
        assert not result.after.refused and not result.skipped
        expected = ["AVERAGE_POOL_2D"] + ["RESIZE_BILINEAR"] * 3 + ["ARG_MAX"]
        assert [r.op_type for r in result.rewrites] == expected
        assert result.after.num_ops == 72  # one SLICE added after the final upsample
        # plan_model on the bytes agrees with the engine's own plan
        assert check_model(result.data, OPTIONS.delegate_options()).single_partition


def test_rewrites_are_the_ones_the_issue_names(fixed):
    sizes = {"513_os8": 520, "513_os16": 528, "257_os8": 264, "257_os16": 272}
    for name, result in fixed.items():
        by_type = {}
        for r in result.rewrites:
            by_type.setdefault(r.op_type, []).append(r)
        assert by_type["AVERAGE_POOL_2D"][0].replacement.startswith("MEAN over H, W")
        assert by_type["AVERAGE_POOL_2D"][0].exactness == "rounding"
        final = by_type["RESIZE_BILINEAR"][-1]
        wide = next(v for k, v in sizes.items() if k in name)
        assert f"-> {wide}x{wide}, then SLICE" in final.replacement, (name, final.replacement)
        assert all(r.exactness == "exact" for r in by_type["RESIZE_BILINEAR"] + by_type["ARG_MAX"])
        assert by_type["ARG_MAX"][0].dtype_change == "output 'ArgMax': INT64 -> INT32"


def test_label_agreement_on_sample_images(google_models, fixed, sample_images):
    # the acceptance as stated: all five photos, all eight models (~14 s; one image alone can fall below
    # 99.9 %: coffee gives 99.69 % on pascal 257 os16, where MEAN's rounding flips a pooled channel)
    for name, data in google_models.items():
        agreement = compare(data, fixed[name].data, sample_images)
        assert agreement.outputs[0].kind == "labels"
        assert (agreement.outputs[0].dtype_in, agreement.outputs[0].dtype_out) == ("int64", "int32")
        assert agreement.label_percent >= 99.9, (name, agreement.label_percent)


def test_label_maps_for_overlays(google_models, fixed, sample_images):
    name = "deeplabv3_mnv2_pascal_257_os8_quant.tflite"
    maps = label_maps(google_models[name], fixed[name].data, sample_images[:2])
    assert [m.name for m in maps] == [im.name for im in sample_images[:2]]
    for m in maps:
        assert m.labels_in.shape == m.labels_out.shape == (257, 257)
        assert m.photo.shape[:2] == m.valid
        assert (m.labels_in == m.labels_out).all()
        assert 15 in m.labels_in  # PASCAL "person" on the astronaut / "cat" (8) on chelsea: real labels
        break


def test_patched_delegate_leaves_the_pool(google_models):
    data = google_models["deeplabv3_mnv2_pascal_513_os8_quant.tflite"]
    result = fix_bytes(data, FixOptions(android_api=29, tf_version="2.21", delegate="patched"))
    assert "AVERAGE_POOL_2D" not in [r.op_type for r in result.rewrites]
    assert result.after.single_partition


def test_api_30_needs_no_resize_rewrite(google_models):
    data = google_models["deeplabv3_mnv2_pascal_513_os8_quant.tflite"]
    result = fix_bytes(data, FixOptions(android_api=30, tf_version="2.21"))
    assert sorted(r.op_type for r in result.rewrites) == ["ARG_MAX", "AVERAGE_POOL_2D"]
    assert result.after.single_partition
