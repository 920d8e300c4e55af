"""ARG_MAX with int64 output -> int32 output.

The delegate maps ARG_MAX only with an int32 output ("NNAPI only supports int32 output."). An index along
an axis is below 2^31 (TFLite dimensions are int32), so int32 holds exactly the values int64 held: the
op computes the same, only the output tensor's dtype changes (and the report says so). Refused when the
int64 output feeds another op, which would then see a different dtype.
"""

from __future__ import annotations

from typing import Any

from deeplab_nnapi.fixer.rewrite import RewriteRecord, Rule, RuleContext


def argmax_int32(ctx: RuleContext, op: Any, index: int, rule: Rule) -> RewriteRecord:
    ed = ctx.editor
    s = ed.s
    out = int(op.outputs[0])
    out_type = ed.type_name(out)
    if out_type != "INT64":
        raise ctx.mismatch(index, rule.op_type, f"output is {out_type}, not INT64")
    users = [ed.position(u) for u in ed.consumers(out)]
    if users:
        raise ctx.mismatch(index, rule.op_type, f"its int64 output feeds op(s) {users}, which expect int64")
    options = op.builtinOptions
    if options is None:
        options = s.ArgMaxOptionsT()
        op.builtinOptionsType = s.BuiltinOptions.ArgMaxOptions
        op.builtinOptions = options
    options.outputType = s.TensorType.INT32
    ed.tensor(out).type = s.TensorType.INT32
    name = ed.name(out)
    return RewriteRecord(
        index, rule.op_type, rule.rewrite,
        replacement="ARG_MAX with int32 output",
        exactness="exact",
        why="indices along an axis are < 2^31: int32 holds the same values",
        dtype_change=f"output {name!r}: INT64 -> INT32",
        new_ops=[op],
    )
