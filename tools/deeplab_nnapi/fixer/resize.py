"""RESIZE_BILINEAR align_corners=True -> align_corners=False to a larger size, then SLICE.

With align_corners=True, n input pixels resized to m, output pixel i samples input position
i*(n-1)/(m-1). Without it, resized to m', output pixel i samples i*n/m'. With m' = n*(m-1)/(n-1) the two
are the same number for every i, so the first m outputs of the align_corners=False resize are the
align_corners=True result, and a SLICE keeps those. DeepLab's sizes are all k*s+1 (65->513: m'=520;
33->257: m'=264; 17->257: m'=272), so m' is always whole there.

Exact in TFLite's kernels, not only on paper: the float and uint8 kernels (reference and optimized)
compute the scale in float32 as (n-1)/(m-1) resp. n/m'; both are the correctly rounded float32 of the same
rational number, so every sample position, weight and rounding is identical. The int8/int16 kernels use a
10-bit fixed-point scale, ((n<<10) + m'/2)/m' against (((n-1)<<10) + (m-1)/2)/(m-1): the rule checks that
these agree too. Special sizes: m == 1 (TFLite then uses n/m in both modes) and n == m (both scales are 1)
need no SLICE; n == 1 samples input pixel 0 everywhere in both modes (exact for integer types, where the
weights sum to 1 before the +0.5 rounding; float models differ in the last bit).

Where m' is not whole there is no exact rewrite: with --approximate the resize becomes align_corners=False
at size m, and the report gives the largest shift of a sample position (in input pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fixer.graph import new_op_version
from deeplab_nnapi.fixer.rewrite import RewriteRecord, Rule, RuleContext

_FIXED_POINT_TYPES = ("INT8", "INT16")


@dataclass(frozen=True)
class Axis:
    name: str  # "height" / "width"
    n: int  # input size
    m: int  # output size
    target: int  # the align_corners=False size (m' or, approximate, m)
    exact: bool
    why: str


def _scale10(n: int, m: int, align: bool) -> int:
    """TFLite's ResizeBilinearInteger 10-bit scale."""
    if align and m > 1:
        return ((1 << 10) * (n - 1) + (m - 1) // 2) // (m - 1)
    return ((1 << 10) * n + m // 2) // m


def plan_axis(name: str, n: int, m: int, type_name: str) -> Axis:
    if m <= 1:
        return Axis(name, n, m, m, True, f"{name}: output size {m}: TFLite uses n/m in both modes")
    if n == 1:
        exact = type_name != "FLOAT32"
        return Axis(name, n, m, m, exact, f"{name}: 1 input pixel: every output is that pixel in both modes"
                    + ("" if exact else " (float: up to the last bit)"))
    if (n * (m - 1)) % (n - 1):
        shift = (m - 1) * abs((n - 1) / (m - 1) - n / m)
        return Axis(name, n, m, m, False,
                    f"{name}: {n}->{m}: m' = {n}*{m - 1}/{n - 1} is not whole; align_corners=False at {m} "
                    f"moves sample positions by up to {shift:.3g} input pixels")
    target = n * (m - 1) // (n - 1)
    if type_name in _FIXED_POINT_TYPES and _scale10(n, m, True) != _scale10(n, target, False):
        return Axis(name, n, m, target, False,
                    f"{name}: {n}->{m}: the {type_name} kernel's 10-bit scales differ "
                    f"({_scale10(n, m, True)} vs {_scale10(n, target, False)})")
    return Axis(name, n, m, target, True,
                f"{name}: {n}->{m} with align_corners samples i*{n - 1}/{m - 1} = i*{n}/{target}")


def resize_align_corners(ctx: RuleContext, op: Any, index: int, rule: Rule) -> RewriteRecord:
    ed = ctx.editor
    s = ed.s
    opts = op.builtinOptions
    if opts is None or not opts.alignCorners:
        raise ctx.mismatch(index, rule.op_type, "align_corners is not set")
    if opts.halfPixelCenters:
        raise ctx.mismatch(index, rule.op_type, "align_corners and half_pixel_centers are both set")
    if op.inputs is None or len(op.inputs) < 2:
        raise ctx.mismatch(index, rule.op_type, "no size input")
    src, size_t, out = int(op.inputs[0]), int(op.inputs[1]), int(op.outputs[0])
    in_shape, out_shape = ed.shape(src), ed.shape(out)
    size = ed.constant(size_t)
    if ed.type_name(size_t) != "INT32" or size is None or size.size != 2:
        raise ctx.mismatch(index, rule.op_type, "the size input is not a constant int32 pair")
    if len(in_shape) != 4 or len(out_shape) != 4 or out_shape[1:3] != [int(size[0]), int(size[1])]:
        raise ctx.mismatch(index, rule.op_type, f"shapes {in_shape} -> {out_shape} are not static NHWC")
    if any(d <= 0 for d in in_shape + out_shape):
        raise ctx.mismatch(index, rule.op_type, f"shapes {in_shape} -> {out_shape} have empty sizes")
    type_name = ed.type_name(src)
    axes = [plan_axis("height", in_shape[1], out_shape[1], type_name),
            plan_axis("width", in_shape[2], out_shape[2], type_name)]
    exact = all(a.exact for a in axes)
    if not exact and not ctx.approximate:
        why = "; ".join(a.why for a in axes if not a.exact)
        raise UsageError(f"{ctx.source}: op {index} RESIZE_BILINEAR: no exact rewrite ({why}); "
                         "--approximate allows align_corners=False alone")
    targets = (axes[0].target, axes[1].target)
    if max(targets) >= 1 << 31 or out_shape[0] * targets[0] * targets[1] * out_shape[3] >= 1 << 31:
        raise ctx.mismatch(index, rule.op_type, f"the align_corners=False size {targets[0]}x{targets[1]} "
                           "is too large for a tensor")
    opts.alignCorners = False
    exactness = "exact" if exact else "approximate"
    why = "; ".join(a.why for a in axes)
    if targets == (out_shape[1], out_shape[2]):
        return RewriteRecord(index, rule.op_type, rule.rewrite,
                             replacement=f"RESIZE_BILINEAR align_corners=False to {targets[0]}x{targets[1]}",
                             exactness=exactness, why=why, new_ops=[op])
    name = ed.name(out)
    new_size = ed.add_constant(f"{name}/fix_size", np.asarray(targets, np.int32), "INT32")
    wide = ed.add_tensor(f"{name}/fix_align_corners_false", ed.type_name(out),
                         [out_shape[0], targets[0], targets[1], out_shape[3]], like=out)
    op.inputs = np.asarray([src, new_size] + [int(x) for x in op.inputs[2:]], dtype=np.int32)
    op.outputs = np.asarray([wide], dtype=np.int32)
    begin = ed.add_constant(f"{name}/fix_slice_begin", np.zeros(4, np.int32), "INT32")
    extent = ed.add_constant(f"{name}/fix_slice_size", np.asarray(out_shape, np.int32), "INT32")
    version = new_op_version(ctx.table.new_op_versions, "SLICE", ed.type_name(out))
    slice_op = ed.make_op("SLICE", version, [wide, begin, extent], [out], "SliceOptions", s.SliceOptionsT())
    ed.insert_after(op, slice_op)
    return RewriteRecord(
        index, rule.op_type, rule.rewrite,
        replacement=(f"RESIZE_BILINEAR align_corners=False {in_shape[1]}x{in_shape[2]} -> "
                     f"{targets[0]}x{targets[1]}, then SLICE to {out_shape[1]}x{out_shape[2]}"),
        exactness=exactness, why=why, new_ops=[op, slice_op], new_op_types=[f"SLICE/{version}"])

