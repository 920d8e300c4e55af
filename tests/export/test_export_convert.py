"""Conversion + verification of DeepLab-shaped graphs (TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.export.variants import ConverterSettings

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

SETTINGS = ConverterSettings()


@pytest.fixture(scope="module")
def converted(graphs, calibration_dir):
    """Every (shape, mode) conversion, done once: bytes of the model."""
    from deeplab_nnapi.export.convert import convert_frozen_graph
    from export_graphs import SIZE

    out = {}
    for shape in ("patched", "upstream"):
        for mode, kind in (("dummy", "float"), ("qat", "qat"), ("calibrated", "float")):
            if shape == "upstream" and mode == "calibrated":
                continue
            r = convert_frozen_graph(graphs[(shape, kind)], SETTINGS, (SIZE, SIZE), mode,
                                     calibration_images=calibration_dir if mode == "calibrated" else None)
            out[(shape, mode)] = r
    return out


@pytest.mark.parametrize("mode", ["dummy", "qat", "calibrated"])
def test_patched_shape_is_one_partition_and_runs(converted, mode):
    from deeplab_nnapi.export.verify import verify_model
    from export_graphs import NUM_CLASSES, SIZE

    r = converted[("patched", mode)]
    v = verify_model(r.model, NUM_CLASSES, (SIZE, SIZE))
    assert v.problems == []
    assert v.single_partition and v.delegate_partitions == 1 and v.plan_nodes == 1
    assert v.input_spec["name"] == "MobilenetV2/MobilenetV2/input"
    assert v.input_spec["dtype"] == "uint8" and v.input_spec["shape"] == [1, SIZE, SIZE, 3]
    assert v.input_spec["zero_point"] == 128 and abs(v.input_spec["scale"] - 1 / 127) < 1e-7
    assert v.output_spec == {"name": "ArgMax", "shape": [1, SIZE, SIZE], "dtype": "int32"}
    assert v.labels_seen and max(v.labels_seen) < NUM_CLASSES


def test_converted_models_are_fully_uint8(converted):
    """No float or int8 tensors besides int32 bias/labels: NNAPI 1.2 takes uint8 only."""
    import tflite

    for (shape, mode), r in converted.items():
        m = tflite.Model.GetRootAsModel(r.model, 0)
        sg = m.Subgraphs(0)
        types = {sg.Tensors(i).Type() for i in range(sg.TensorsLength())}
        allowed = {tflite.TensorType.UINT8, tflite.TensorType.INT32, tflite.TensorType.INT64}
        assert types <= allowed, (shape, mode, types)
        ops = set()
        for i in range(sg.OperatorsLength()):
            oc = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
            ops.add(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()))
        assert tflite.BuiltinOperator.QUANTIZE not in ops and tflite.BuiltinOperator.DEQUANTIZE not in ops


@pytest.mark.parametrize("mode", ["dummy", "qat"])
def test_upstream_shape_is_rejected_with_reasons(converted, mode):
    from deeplab_nnapi.export.verify import verify_model
    from export_graphs import NUM_CLASSES, SIZE

    r = converted[("upstream", mode)]
    v = verify_model(r.model, NUM_CLASSES, (SIZE, SIZE))
    assert not v.single_partition
    text = " | ".join(v.refusals)
    assert text.count("RESIZE_BILINEAR") == 3 and "align_corners" in text
    assert "ARG_MAX" in text and "int32" in text
    assert any("not one partition" in p for p in v.problems)
    assert any("output is int64" in p for p in v.problems)
    # the stock delegate refuses the large pool on top of that
    sv = verify_model(r.model, NUM_CLASSES, (SIZE, SIZE), delegate="stock")
    assert any("AVERAGE_POOL_2D" in x and "289 > 256" in x for x in sv.refusals)
    assert sv.delegate_partitions == 3 and sv.plan_nodes == 8  # the seed profile's shape


def test_patched_shape_under_stock_delegate_fails_only_on_pool(converted):
    from deeplab_nnapi.export.verify import verify_model
    from export_graphs import NUM_CLASSES, SIZE

    v = verify_model(converted[("patched", "qat")].model, NUM_CLASSES, (SIZE, SIZE), delegate="stock")
    assert [x.split(":")[0].split()[-1] for x in v.refusals] == ["AVERAGE_POOL_2D"]


def test_label_range_is_checked(converted):
    from deeplab_nnapi.export.verify import verify_model
    from export_graphs import SIZE

    v = verify_model(converted[("patched", "dummy")].model, 2, (SIZE, SIZE))
    assert max(v.labels_seen) >= 2
    assert any("outside 0..1" in p for p in v.problems)


def test_calibration_records_ranges(converted):
    r = converted[("patched", "calibrated")]
    assert r.calibration["images"] == 4 and r.calibration["ranges"] >= 8


def test_calibrated_model_tracks_float_graph_better_than_dummy(graphs, converted, tf):
    """Calibration exists to beat dummy ranges on accuracy: compare labels with the float graph on an
    image like the calibration images (none of which is this one)."""
    from deeplab_nnapi.export.verify import run_model, test_image
    from export_graphs import SIZE

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(graphs[("patched", "float")].read_bytes())
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    img = test_image(SIZE, SIZE, seed=3)
    with tf.compat.v1.Session(graph=g) as s:
        ref = s.run("ArgMax:0", {"ImageTensor:0": img})
    agree = {}
    for mode in ("dummy", "calibrated"):
        out, _, _ = run_model(converted[("patched", mode)].model, img)
        agree[mode] = float(np.mean(out == ref))
    print("label agreement with the float graph:", agree)
    assert agree["calibrated"] >= agree["dummy"], agree
    assert agree["calibrated"] > 0.97, agree


def test_bad_arrays_and_inputs(graphs):
    from deeplab_nnapi.export.convert import convert_frozen_graph

    with pytest.raises(UsageError, match="output array 'logits' is not a node"):
        convert_frozen_graph(graphs[("patched", "qat")],
                             ConverterSettings(output_array="logits"), (129, 129), "qat")
    with pytest.raises(UsageError, match="not a frozen GraphDef"):
        convert_frozen_graph(b"\x00garbage\xff" * 10, SETTINGS, (129, 129), "dummy")
    with pytest.raises(UsageError, match="needs --calibration-images"):
        convert_frozen_graph(graphs[("patched", "float")], SETTINGS, (129, 129), "calibrated")


def test_float_model_fails_verification(graphs, tf):
    """A model that is one partition but float inside (e.g. a graph without ranges) is not accepted."""
    from deeplab_nnapi.export.verify import verify_model
    from export_graphs import NUM_CLASSES, SIZE

    inp = "MobilenetV2/MobilenetV2/input"
    conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(graphs[("patched", "float")]), [inp], ["ArgMax"], input_shapes={inp: [1, SIZE, SIZE, 3]})
    model = conv.convert()
    v = verify_model(model, NUM_CLASSES, (SIZE, SIZE))
    assert any("not a fully uint8 model" in p and "float32" in p for p in v.problems)


def test_graph_not_cut_by_the_input_array_is_explained(tf):
    """Without a static shape the final resize size depends on the original image: one clear error."""
    from deeplab_nnapi.export.convert import ConversionError, convert_frozen_graph
    from export_graphs import GraphSpec, build_frozen_graph

    pb = build_frozen_graph(GraphSpec(qat=True, static_shape=False))
    with pytest.raises(ConversionError, match="still depends on another placeholder"):
        convert_frozen_graph(pb, SETTINGS, (129, 129), "qat")
