"""Helpers for the check_delegation tests: where the reference material is, and the Google-shaped
fixture (a reference model edited to look like Google's original export). A uniquely named module, so
test files can import it whatever other conftest.py files the suite holds."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Dict, List

import tflite

REPO_ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    env = os.environ.get("DEEPLAB_NNAPI_REFERENCE")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "reference").resolve()


REFERENCE = reference_dir()
MODELS_DIR = REFERENCE / "models"
SEED_PROFILE = REFERENCE / "seed_profile.txt"
PASCAL_513_OS8 = MODELS_DIR / "deeplabv3_mnv2_pascal_513_os8_quant.tflite"
REFERENCE_MODELS: List[Path] = sorted(MODELS_DIR.glob("*.tflite")) if MODELS_DIR.is_dir() else []

TENSOR_TYPE_INT64 = 4


def _field_pos(tab, slot: int) -> int:
    o = tab.Offset(slot)
    return tab.Pos + o if o else 0


def google_shaped(data: bytes) -> bytes:
    """Edit a reference model into the shape of Google's original export: every RESIZE_BILINEAR gets
    align_corners=True and ARG_MAX outputs int64 (ArgMaxOptions.output_type and the output tensor's type).

    Scalars that are stored are patched in place. align_corners=False is the schema default, so the
    converter did not store it: each resize gets a new ResizeBilinearOptions table (and vtable) appended
    to the end of the buffer, and the operator's builtin_options offset (a forward uoffset) is pointed at
    it. The result is a valid flatbuffer that TFLite loads.
    """
    buf = bytearray(data)
    model = tflite.Model.GetRootAs(bytes(buf), 0)
    sg = model.Subgraphs(0)
    codes: Dict[int, int] = {}
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes[i] = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    resize, argmax = tflite.BuiltinOperator.RESIZE_BILINEAR, tflite.BuiltinOperator.ARG_MAX
    n_resize = n_argmax = 0
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = codes[op.OpcodeIndex()]
        if code == argmax:
            opts_tab = op.BuiltinOptions()
            assert opts_tab is not None, "ARG_MAX without options"
            pos = opts_tab.Pos
            tab = tflite.ArgMaxOptions()
            tab.Init(opts_tab.Bytes, pos)
            fpos = _field_pos(tab._tab, 4)
            assert fpos, "ArgMaxOptions.output_type not stored (default FLOAT32?)"
            buf[fpos] = TENSOR_TYPE_INT64
            out = sg.Tensors(op.Outputs(0))
            tpos = _field_pos(out._tab, 6)
            assert tpos, "output tensor type not stored"
            buf[tpos] = TENSOR_TYPE_INT64
            n_argmax += 1
        elif code == resize:
            opts_tab = op.BuiltinOptions()
            half = False
            if opts_tab is not None:
                old = tflite.ResizeBilinearOptions()
                old.Init(opts_tab.Bytes, opts_tab.Pos)
                half = bool(old.HalfPixelCenters())
            # vtable: 4 fields (new_height, new_width: deprecated; align_corners; half_pixel_centers)
            while len(buf) % 4:
                buf.append(0)
            vt = len(buf)
            buf += struct.pack("<HHHHHH", 12, 8, 0, 0, 4, 5)
            while len(buf) % 4:
                buf.append(0)
            table = len(buf)
            buf += struct.pack("<iBBxx", table - vt, 1, 1 if half else 0)
            slot_pos = _field_pos(op._tab, 12)  # Operator.builtin_options
            assert slot_pos, "RESIZE_BILINEAR without builtin_options"
            struct.pack_into("<I", buf, slot_pos, table - slot_pos)
            n_resize += 1
    assert n_resize == 3 and n_argmax == 1, (n_resize, n_argmax)
    return bytes(buf)
