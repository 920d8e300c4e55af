"""The fix report, as text (for people) and as JSON (``--json``)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from deeplab_nnapi.fixer.agreement import Agreement
from deeplab_nnapi.fixer.engine import FixResult
from deeplab_nnapi.nnapi.delegation import DelegationPlan
from deeplab_nnapi.nnapi.tflite_model import format_ranges


def plan_summary(plan: DelegationPlan) -> Dict[str, Any]:
    return {
        "ops": plan.num_ops,
        "nodes": len(plan.nodes),
        "delegate_nodes": len(plan.delegate_nodes),
        "cpu_nodes": len(plan.nodes) - len(plan.delegate_nodes),
        "single_partition": plan.single_partition,
        "partitions": [{"type": n.type, "ops": format_ranges(n.ops), "index": n.index} for n in plan.nodes],
        "refused": [r.to_json() for r in plan.refused],
    }


def to_json(result: FixResult, agreement: Optional[Agreement], extra: Dict[str, Any]) -> Dict[str, Any]:
    before, after = result.before, result.after
    opts = result.options
    return {
        **extra,
        "options": {"android_api": opts.android_api, "tf_version": before.tf_version,
                    "delegate": opts.delegate, "approximate": opts.approximate},
        "rewrites": [r.to_json() for r in result.rewrites],
        "not_rewritten": [s.to_json() for s in result.skipped],
        "exact": result.exact,
        "dtype_changes": result.dtype_changes,
        "min_runtime_version": {"before": result.runtime_version[0], "after": result.runtime_version[1]},
        "before": plan_summary(before),
        "after": plan_summary(after),
        "agreement": agreement.to_json() if agreement is not None else None,
        "fix_seconds": round(result.seconds, 4),
    }


def _nodes(plan: DelegationPlan) -> str:
    parts = [("[" + format_ranges(n.ops) + "]") if n.is_delegate else n.type for n in plan.nodes]
    kind = f"{len(plan.delegate_nodes)} delegate, {len(plan.nodes) - len(plan.delegate_nodes)} CPU"
    return f"{plan.num_ops} ops, {len(plan.nodes)} nodes ({kind}): {' '.join(parts)}"


def to_text(result: FixResult, agreement: Optional[Agreement], source: str, target: str) -> List[str]:
    opts = result.options
    lines = [f"{source} -> {target}: {opts.delegate} delegate, TF {result.before.tf_version} rules, "
             f"Android API {opts.android_api}"]
    lines.append(f"  before: {_nodes(result.before)}")
    if not result.rewrites:
        lines.append("  nothing to rewrite")
    for r in result.rewrites:
        ops = format_ranges(r.new_indices)
        lines.append(f"  rewrite op {r.op} {r.op_type} -> ops {ops}: {r.replacement}")
        lines.append(f"      refused because: {r.refused}")
        lines.append(f"      {r.exactness}: {r.why}")
        if r.dtype_change:
            lines.append(f"      dtype change: {r.dtype_change}")
    for s in result.skipped:
        lines.append(f"  not rewritten: op {s.op} {s.op_type}: {s.why} (refused: {s.reason})")
    old, new = result.runtime_version
    if old != new:
        lines.append(f"  min_runtime_version metadata: {old} -> {new}")
    lines.append(f"  after:  {_nodes(result.after)}")
    if agreement is not None:
        for o in agreement.outputs:
            if o.kind == "labels":
                detail = f"label agreement {o.percent:.4f} % ({o.equal}/{o.elements} pixels)"
            else:
                detail = f"max |delta| {o.max_abs_diff:.6g} (dequantized), {o.percent:.4f} % equal"
            lines.append(f"  agreement on {len(agreement.images)} images ({', '.join(agreement.images)}), "
                         f"output {o.index} {o.name!r} {o.dtype_in}->{o.dtype_out}: {detail}")
    verdict = "ONE NNAPI partition" if result.after.single_partition else "NOT a single NNAPI partition"
    lines.append(f"  result: {len(result.before.nodes)} -> {len(result.after.nodes)} nodes, {verdict}; "
                 f"fixed in {result.seconds:.3f} s")
    return lines
