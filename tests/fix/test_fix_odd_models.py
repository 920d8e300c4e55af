"""Odd models fix_model met in the model fuzz (tests/modelfuzz.py): each was a traceback; each is now a
one-line refusal (exit 2) with nothing written."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

import modelfuzz as mf  # noqa: E402
from deeplab_nnapi.cli.fix_model import main  # noqa: E402
from deeplab_nnapi.fixer.model_io import read_model, write_model  # noqa: E402


def _head_with(edit) -> bytes:
    model = read_model(mf._small_graphs()["head"])
    edit(model.subgraphs[0], model)
    return write_model(model)


def _op(sg, model, op_type: str):
    from deeplab_nnapi.nnapi.tflite_model import OPERATOR_NAMES

    return next(op for op in sg.operators
                if OPERATOR_NAMES[model.operatorCodes[op.opcodeIndex].builtinCode] == op_type)


def _size_of_7_bytes(sg, model):
    size_tensor = sg.tensors[int(_op(sg, model, "RESIZE_BILINEAR").inputs[1])]
    model.buffers[size_tensor.buffer].data = np.zeros(7, np.uint8)


def _argmax_without_outputs(sg, model):
    _op(sg, model, "ARG_MAX").outputs = np.zeros(0, np.int32)


def _pool_with_negative_channels(sg, model):
    pool = _op(sg, model, "AVERAGE_POOL_2D")
    sg.tensors[int(pool.inputs[0])].shape = np.asarray([1, 17, 17, -8], np.int32)
    sg.tensors[int(pool.outputs[0])].shape = np.asarray([1, 1, 1, -8], np.int32)
    pool.builtinOptions.filterHeight = 3  # not the whole map: the depthwise rewrite, with -8 channels


def _pool_window_of_a_billion(sg, model):
    pool = _op(sg, model, "AVERAGE_POOL_2D")
    pool.builtinOptions.filterHeight = pool.builtinOptions.filterWidth = 1 << 15
    sg.tensors[int(pool.outputs[0])].shape = np.asarray([1, 2, 2, 8], np.int32)


@pytest.mark.parametrize("edit, words", [
    # The model reader now refuses what TFLite refuses to load (a constant shorter than its shape, a negative
    # dimension) before fix_model's own checks, which stay for what the reader lets through.
    (_size_of_7_bytes, "buffer holds 7 bytes, shape [2] of INT32 needs 8"),
    (_argmax_without_outputs, "it needs 1 input(s) and 1 output(s)"),
    (_pool_with_negative_channels, "negative dimension in shape"),
    (_pool_window_of_a_billion, "equivalent weights would be"),
], ids=["size-7-bytes", "argmax-no-output", "pool-negative-channels", "pool-huge-window"])
def test_odd_model_is_refused_in_one_line(tmp_path, capsys, edit, words):
    src, out = tmp_path / "odd.tflite", tmp_path / "fixed.tflite"
    src.write_bytes(_head_with(edit))
    rc = main([str(src), str(out), "--no-agreement", "--android-api", "29"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("fix_model: error:"), err
    assert words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.tflite"]  # nothing written, no temp file
