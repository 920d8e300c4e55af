"""The predictor's plan beside the real delegate's: what differs, node for node and reason for reason.

Public API::

    from deeplab_nnapi.probe.crosscheck import differences, predictor_release
    diffs = differences(predicted_plan, real_result)    # [] when they agree
    predictor_release(real.source)                      # the TF release whose rules fit that tree

Reasons are compared as the delegate words them. The predictor may add a detail in parentheses after the
delegate's text ("... reference CPU path (filter 65x65 = 4225 > 256)"); that detail is not a difference.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Union

from deeplab_nnapi.nnapi.delegation import DelegationPlan
from deeplab_nnapi.nnapi.rules import load_rules, version_key
from deeplab_nnapi.nnapi.tflite_model import format_ranges
from deeplab_nnapi.probe.run import ProbeFailure

Result = Union[DelegationPlan, ProbeFailure]

_DETAIL = re.compile(r" \([^()]*\)$")


def reasons(text: str) -> List[str]:
    """A refusal text ("a; b") as the delegate's own messages, sorted, without the predictor's details."""
    return sorted(_DETAIL.sub("", part.strip()) for part in text.split("; ") if part.strip())


def _node_text(n) -> str:
    return f"{n.type} [{format_ranges(n.ops)}] :{n.index}"


def differences(predicted: Result, real: Result) -> List[str]:
    """Every way the two answers differ, one line each; [] when they agree."""
    if isinstance(real, ProbeFailure) or isinstance(predicted, ProbeFailure):
        if isinstance(real, ProbeFailure) and isinstance(predicted, ProbeFailure):
            return [] if real.status == predicted.status else [f"status: {predicted.status} vs {real.status}"]
        failed = real if isinstance(real, ProbeFailure) else predicted
        who = "the real delegate" if failed is real else "the predictor"
        return [f"{who} gives no plan ({failed.status}: {failed.message})"]
    out: List[str] = []
    a = [(n.type, list(n.ops), n.index) for n in predicted.nodes]
    b = [(n.type, list(n.ops), n.index) for n in real.nodes]
    if a != b:
        for i in range(max(len(a), len(b))):
            pa = _node_text(predicted.nodes[i]) if i < len(a) else "-"
            pb = _node_text(real.nodes[i]) if i < len(b) else "-"
            if pa != pb:
                out.append(f"node {i + 1}: predicted {pa}; real {pb}")
    ra = {r.op: r for r in predicted.refused}
    rb = {r.op: r for r in real.refused}
    for op in sorted(set(ra) | set(rb)):
        x, y = ra.get(op), rb.get(op)
        if x is None:
            out.append(f"op {op} {y.op_type}: refused only by the real delegate: {y.reason}")
        elif y is None:
            out.append(f"op {op} {x.op_type}: refused only by the predictor: {x.reason}")
        elif reasons(x.reason) != reasons(y.reason):
            out.append(f"op {op} {x.op_type}: predicted reason {x.reason!r}; real {y.reason!r}")
    return out


def predictor_release(source: Optional[Dict[str, Any]]) -> Optional[str]:
    """The predictor's release (``--tf-version``) for the tree the real delegate came from: its own
    ``2.N`` when it is a TensorFlow tree whose release the rules know, else the newest (LiteRT follows
    TensorFlow's newest delegate)."""
    rules = load_rules()
    version = (source or {}).get("version") or ""
    m = re.match(r"^(\d+)\.(\d+)", version)
    if m and (source or {}).get("layout") == "tensorflow":
        release = f"{m.group(1)}.{m.group(2)}"
        if release in rules.releases:
            return release
        known = sorted(rules.releases, key=version_key)
        if version_key(release) > version_key(known[-1]):
            return known[-1]
    return None
