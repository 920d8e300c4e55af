"""Each rewrite on small graphs: what it writes, and that it computes what the original computed."""

from __future__ import annotations

import numpy as np
import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes
from deeplab_nnapi.fixer.model_io import min_runtime_version, read_model
from deeplab_nnapi.fixer.resize import plan_axis
from deeplab_nnapi.nnapi.tflite_model import load_model
from fix_support import argmax_model, one_op_model, pool_model, random_input, resize_model, run


@pytest.mark.parametrize("n, m, wide", [(65, 513, 520), (33, 257, 264), (17, 257, 272), (33, 513, 528),
                                        (65, 65, 65), (1, 65, 65), (9, 1, 1)])
def test_resize_target_sizes(n, m, wide):
    axis = plan_axis("h", n, m, "UINT8")
    assert axis.exact and axis.target == wide


def test_resize_without_whole_target_is_approximate():
    axis = plan_axis("h", 10, 64, "UINT8")  # 10 * 63 / 9 = 70: whole; 10 -> 65: 640/9 is not
    assert axis.exact and axis.target == 70
    axis = plan_axis("h", 10, 65, "UINT8")
    assert not axis.exact and axis.target == 65 and "not whole" in axis.why


def _agree(original: bytes, fixed: bytes, seeds=range(4)) -> float:
    worst = 0.0
    for seed in seeds:
        x = random_input(original, seed)
        a, b = run(original, x).astype(np.float64), run(fixed, x).astype(np.float64)
        assert a.shape == b.shape
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


@pytest.mark.parametrize("type_name", ["UINT8", "FLOAT32", "INT8"])
@pytest.mark.parametrize("n, m", [(17, 257), (9, 33), (1, 16), (12, 12)])
def test_resize_rewrite_is_bit_exact(type_name, n, m):
    model = resize_model(n, m, c=4, type_name=type_name)
    if n == 1 and type_name == "FLOAT32":  # exact only to the last bit: not claimed
        with pytest.raises(UsageError, match="up to the last bit"):
            fix_bytes(model, FixOptions())
        return
    result = fix_bytes(model, FixOptions())
    [r] = result.rewrites
    assert r.exactness == "exact" and result.after.single_partition
    assert _agree(model, result.data) == 0.0
    ops = [op.op_type for op in load_model(result.data).operators]
    assert ops == (["RESIZE_BILINEAR", "SLICE"] if n not in (1, m) else ["RESIZE_BILINEAR"])


def test_resize_not_whole_needs_approximate():
    model = resize_model(10, 65)
    with pytest.raises(UsageError, match=r"no exact rewrite .*--approximate"):
        fix_bytes(model, FixOptions())
    result = fix_bytes(model, FixOptions(approximate=True))
    assert result.rewrites[0].exactness == "approximate" and result.after.single_partition
    assert 0 < _agree(model, result.data) <= 255  # not the same computation, but the same kind of output


def test_slice_raises_min_runtime_version():
    result = fix_bytes(resize_model(17, 257), FixOptions())
    assert result.runtime_version == ("1.5.0", "1.14.0")
    assert min_runtime_version(read_model(result.data)) == "1.14.0"


def test_argmax_int32_same_labels():
    model = argmax_model()
    result = fix_bytes(model, FixOptions())
    assert result.dtype_changes == ["output 'labels': INT64 -> INT32"]
    x = random_input(model, 3)
    a, b = run(model, x), run(result.data, x)
    assert a.dtype == np.int64 and b.dtype == np.int32 and (a == b).all()


def _near_half(fh: int, fw: int, oh: int, ow: int, c: int, seed: int) -> np.ndarray:
    """Windows whose sums lie next to a half (k + (N-1)/(2N), k + 1/2, k + (N+1)/(2N)): the hard cases."""
    rng = np.random.default_rng(seed)
    n = fh * fw
    x = np.zeros((1, oh * fh, ow * fw, c), np.uint8)
    for i in range(oh):
        for j in range(ow):
            for ch in range(c):
                total = int(rng.integers(0, 255)) * n + n // 2 + int(rng.integers(-1, 2))
                total = min(max(total, 0), 255 * n)
                v = np.full(n, total // n, np.int64)
                v[: total - (total // n) * n] += 1
                rng.shuffle(v)
                x[0, i * fh:(i + 1) * fh, j * fw:(j + 1) * fw, ch] = v.reshape(fh, fw)
    return x


@pytest.mark.parametrize("h, f, stride, zp", [(34, 17, 17, 124), (130, 65, 65, 3), (51, 17, 17, 0)])
def test_partial_window_pool_becomes_exact_depthwise(h, f, stride, zp):
    model = pool_model(h, h, 16, f, f, stride=stride, quant=(0.05, zp))
    result = fix_bytes(model, FixOptions())
    [r] = result.rewrites
    assert r.replacement.startswith("DEPTHWISE_CONV_2D") and r.exactness == "exact"
    assert result.after.single_partition
    o = (h - f) // stride + 1
    for seed in range(3):
        x = _near_half(f, f, o, o, 16, seed) if h == o * f else random_input(model, seed)
        assert (run(model, x) == run(result.data, x)).all()
    assert _agree(model, result.data) == 0.0


def test_whole_map_pool_becomes_mean_within_one_step():
    model = pool_model(17, 17, 32, 17, 17, quant=(0.16, 124))
    result = fix_bytes(model, FixOptions())
    [r] = result.rewrites
    assert r.replacement.startswith("MEAN") and r.exactness == "rounding"
    assert [op.op_type for op in load_model(result.data).operators] == ["MEAN"]
    diffs = [np.abs(run(model, x).astype(int) - run(result.data, x).astype(int)).max()
             for x in (_near_half(17, 17, 1, 1, 32, s) for s in range(3))]
    assert max(diffs) <= 1


def test_even_partial_window_is_rounding():
    model = pool_model(36, 36, 8, 18, 18, stride=18)
    [r] = fix_bytes(model, FixOptions()).rewrites
    assert r.exactness == "rounding"
    x = _near_half(18, 18, 2, 2, 8, 0)
    assert np.abs(run(model, x).astype(int) - run(fix_bytes(model).data, x).astype(int)).max() <= 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(activation="RELU"), "fused activation"),
    (dict(padding="SAME", stride=1), "SAME padding"),
])
def test_pool_the_rule_cannot_match(kwargs, match):
    model = pool_model(20, 20, 4, 17, 17, **kwargs)
    with pytest.raises(UsageError, match=match):
        fix_bytes(model, FixOptions())


def test_small_pool_is_left_alone():
    model = pool_model(16, 16, 4, 16, 16)
    result = fix_bytes(model, FixOptions())
    assert result.rewrites == [] and result.before.single_partition


def test_argmax_feeding_another_op_cannot_be_rewritten():
    from deeplab_nnapi.fixer.graph import GraphEditor
    from deeplab_nnapi.fixer.model_io import write_model

    model = read_model(argmax_model())
    ed = GraphEditor(model)
    out = ed.add_tensor("labels_f", "FLOAT32", [1, 9, 9])
    from deeplab_nnapi.fixer.model_io import schema

    cast = ed.make_op("CAST", 1, [int(ed.sg.operators[0].outputs[0])], [out])
    ed.sg.operators.append(cast)
    ed.sg.outputs = np.asarray([out], np.int32)
    assert schema()
    with pytest.raises(UsageError, match="feeds op"):
        fix_bytes(write_model(model), FixOptions())


def test_unknown_op_is_reported_not_rewritten():
    model = one_op_model("FLOOR_DIV", 1, [dict(name="a", type="INT32", shape=[4]),
                                          dict(name="b", type="INT32", shape=[4])],
                         [dict(name="c", type="INT32", shape=[4])])
    result = fix_bytes(model, FixOptions())
    assert result.rewrites == [] and [s.op_type for s in result.skipped] == ["FLOOR_DIV"]
    assert "no rewrite rule" in result.skipped[0].why
