"""What every rewrite rule gets and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fixer.graph import GraphEditor
from deeplab_nnapi.fixer.table import FixTable, Rule

#: How close a replacement is to what it replaced:
#:   exact        the same values, bit for bit, in TFLite's kernels
#:   rounding     the same in real arithmetic; TFLite's integer kernel rounds in two steps, so a value very
#:                close to a half can come out 1 step (one quantization level) apart
#:   approximate  not the same computation (only with --approximate); the report says how far off
EXACTNESS = ("exact", "rounding", "approximate")


class RuleMismatch(UsageError):
    """The op is refused and a rule exists for it, but the rule cannot rewrite this graph (exit 2)."""


@dataclass
class RuleContext:
    editor: GraphEditor
    table: FixTable
    approximate: bool
    source: str

    def mismatch(self, index: int, op_type: str, why: str) -> RuleMismatch:
        return RuleMismatch(f"{self.source}: op {index} {op_type}: cannot rewrite: {why}")


@dataclass
class RewriteRecord:
    op: int  # index of the refused op in IN
    op_type: str
    rule: str  # the rewrite's name (fix_rules.toml)
    replacement: str  # what replaced it, one line
    exactness: str  # one of EXACTNESS
    why: str  # why the replacement computes the same, or how it differs
    refused: str = ""  # the predictor's reasons for IN
    dtype_change: Optional[str] = None  # e.g. "output 'ArgMax' INT64 -> INT32"
    new_ops: List[Any] = field(default_factory=list, repr=False)  # OperatorT objects to validate
    new_op_types: List[str] = field(default_factory=list)  # (type/version) of the ops it adds
    new_indices: List[int] = field(default_factory=list)  # their indices in OUT

    def to_json(self) -> Dict[str, Any]:
        return {
            "op": self.op,
            "op_type": self.op_type,
            "rule": self.rule,
            "refused": self.refused,
            "replacement": self.replacement,
            "ops_in_out": self.new_indices,
            "exactness": self.exactness,
            "why": self.why,
            "dtype_change": self.dtype_change,
        }


__all__ = ["EXACTNESS", "RewriteRecord", "RuleContext", "RuleMismatch", "Rule"]
