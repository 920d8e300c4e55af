"""Quantized AVERAGE_POOL_2D with a window over 256 elements -> an equivalent the stock delegate takes.

The stock delegate refuses quantized average pools whose window has more than 256 elements (the NNAPI
reference CPU path could overflow); the op that replaces the pool is checked by the predictor like any other.
TFLite's quantized pool computes round(sum/N) on the raw values (input and output share scale and zero point,
which the rule requires).

* The window covers the whole map (output 1x1, window >= map: DeepLab's image pooling, 65x65, 33x33,
  17x17) -> MEAN over H and W with keep_dims, the pool's output tensor and quantization kept. The same mean
  in real arithmetic; TFLite's MEAN kernel multiplies the sum by a fixed-point 1/N and then shifts right
  (log2 N bits), rounding at both steps, so a mean within ~1/256 of a half can land one quantization step
  from the pool's (exactness "rounding"; measured: 1 value in ~1,600 pooled channels of the sample images).
* Otherwise (a window over part of the map) -> DEPTHWISE_CONV_2D with the same window and strides, a
  constant filter of 1/N stored as 2^7 (uint8; 2^6 for int8) with scale 1/(2^7 N), zero point 0, and a zero
  bias: the accumulator is 2^7 (sum - N zp) and the requantization divides it by 2^7 N, which keeps 7 more
  fraction bits through the first rounding, enough for the 1/(2N) margin: exact when N is odd (no ties);
  an even N can meet an exact tie, which the convolution rounds away from zero and the pool up ("rounding").
  Only VALID padding (or SAME that pads nothing): a pool divides by the in-map count at the borders, a
  convolution by N. Stacked smaller pools are not used: their intermediate result is rounded to 8 bits, so
  they are not exact.
* Fused activations, and input/output quantization that differ, are refused (exit 2, the rule cannot match).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deeplab_nnapi.fixer.graph import new_op_version
from deeplab_nnapi.fixer.rewrite import RewriteRecord, Rule, RuleContext


def pool_mean(ctx: RuleContext, op: Any, index: int, rule: Rule) -> RewriteRecord:
    ed = ctx.editor
    o = op.builtinOptions
    if o is None:
        raise ctx.mismatch(index, rule.op_type, "no pool options")
    src, out = int(op.inputs[0]), int(op.outputs[0])
    in_shape, out_shape = ed.shape(src), ed.shape(out)
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise ctx.mismatch(index, rule.op_type, f"shapes {in_shape} -> {out_shape} are not NHWC")
    if o.fusedActivationFunction != ed.s.ActivationFunctionType.NONE:
        raise ctx.mismatch(index, rule.op_type, "fused activation (MEAN and the equivalents have none)")
    if ed.quant(src) != ed.quant(out):
        raise ctx.mismatch(index, rule.op_type, "input and output quantization differ")
    _, zps = ed.quant(src)
    zero_point = zps[0] if zps else 0
    if any(d <= 0 for d in in_shape + out_shape):
        raise ctx.mismatch(index, rule.op_type, f"shapes {in_shape} -> {out_shape} have empty sizes")
    _, h, w, _ = in_shape
    fh, fw = int(o.filterHeight), int(o.filterWidth)
    if fh <= 0 or fw <= 0 or int(o.strideH) <= 0 or int(o.strideW) <= 0:
        raise ctx.mismatch(index, rule.op_type, f"a {fh}x{fw} window with stride {o.strideH}x{o.strideW}")
    if fh * fw * in_shape[3] > _MAX_WEIGHTS:
        raise ctx.mismatch(index, rule.op_type, f"a {fh}x{fw} window over {in_shape[3]} channels: the "
                           f"equivalent weights would be {fh * fw * in_shape[3]} values")
    if out_shape[1:3] == [1, 1] and fh >= h and fw >= w:
        return _mean(ctx, op, index, rule, src, out, h * w)
    return _depthwise(ctx, op, index, rule, src, out, fh, fw, zero_point)


#: The most weights an equivalent DEPTHWISE_CONV_2D may get (DeepLab's largest: 65x65x256 = 1.1 M).
_MAX_WEIGHTS = 1 << 24

#: The filter value that stands for 1/N (with scale 1/(value*N)): more accumulator bits, exact rounding.
_WEIGHT_ONE = {"UINT8": 1 << 7, "INT8": 1 << 6}


def _mean(ctx: RuleContext, op: Any, index: int, rule: Rule, src: int, out: int, n: int) -> RewriteRecord:
    ed = ctx.editor
    s = ed.s
    why = (f"window = the whole {n}-element map: MEAN is the same mean; its two-step fixed-point rounding "
           "can put a value 1 step from the pool's when the mean is within ~1/256 of a half")
    name = ed.name(out)
    axis = ed.add_constant(f"{name}/fix_mean_axis", np.asarray([1, 2], np.int32), "INT32")
    version = new_op_version(ctx.table.new_op_versions, "MEAN", ed.type_name(src))
    mean = ed.make_op("MEAN", version, [src, axis], [out], "ReducerOptions", s.ReducerOptionsT())
    mean.builtinOptions.keepDims = True
    ed.replace(op, mean)
    h, w = ed.shape(src)[1:3]
    return RewriteRecord(index, rule.op_type, rule.rewrite,
                         replacement=f"MEAN over H, W ({h}x{w}, keep_dims), same output quantization",
                         exactness="rounding", why=why, new_ops=[mean], new_op_types=[f"MEAN/{version}"])


def _depthwise(ctx: RuleContext, op: Any, index: int, rule: Rule, src: int, out: int, fh: int, fw: int,
               zero_point: int) -> RewriteRecord:
    ed = ctx.editor
    s = ed.s
    o = op.builtinOptions
    in_shape, out_shape = ed.shape(src), ed.shape(out)
    type_name = ed.type_name(src)
    strides = (int(o.strideH), int(o.strideW))
    valid = o.padding == s.Padding.VALID or all(
        (out_shape[i] - 1) * strides[i - 1] + f <= in_shape[i] and (in_shape[i] - f) // strides[i - 1] + 1
        == out_shape[i] for i, f in ((1, fh), (2, fw)))  # SAME that pads nothing
    if not valid:
        raise ctx.mismatch(index, rule.op_type, "SAME padding with a partial window: the pool divides by the "
                           "in-map count at the borders, no constant-weight equivalent")
    n = fh * fw
    exact = n % 2 == 1
    why = (f"{fh}x{fw} window: DEPTHWISE_CONV_2D of 1/{n} = round(sum/{n} - zp) + zp; N odd, no ties"
           if exact else f"{fh}x{fw} window, N = {n} even: an exact tie rounds away from zero, the pool up")
    channels = in_shape[3]
    scales, _ = ed.quant(src)
    name = ed.name(out)
    one = _WEIGHT_ONE[type_name]
    weights = ed.add_constant(f"{name}/fix_pool_weights", np.full((1, fh, fw, channels), one), type_name,
                              [1.0 / (one * n)], [0])
    bias = ed.add_constant(f"{name}/fix_pool_bias", np.zeros(channels, np.int32), "INT32",
                           [scales[0] / (one * n)], [0])
    opts = s.DepthwiseConv2DOptionsT()
    opts.padding = s.Padding.VALID
    opts.strideW, opts.strideH = int(o.strideW), int(o.strideH)
    opts.depthMultiplier = 1
    opts.dilationWFactor = opts.dilationHFactor = 1
    opts.fusedActivationFunction = s.ActivationFunctionType.NONE
    version = new_op_version(ctx.table.new_op_versions, "DEPTHWISE_CONV_2D", type_name)
    conv = ed.make_op("DEPTHWISE_CONV_2D", version, [src, weights, bias], [out],
                      "DepthwiseConv2DOptions", opts)
    ed.replace(op, conv)
    return RewriteRecord(index, rule.op_type, rule.rewrite,
                         replacement=f"DEPTHWISE_CONV_2D {fh}x{fw} stride {o.strideH}x{o.strideW}, "
                         f"constant weights 1/{n}, zero bias",
                         exactness="exact" if exact else "rounding", why=why, new_ops=[conv],
                         new_op_types=[f"DEPTHWISE_CONV_2D/{version}"])
