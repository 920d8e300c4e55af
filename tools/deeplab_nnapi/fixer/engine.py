"""Drive the rewrites: predict, rewrite what the predictor refuses and a rule answers, check, serialize.

1. The predictor (``nnapi.delegation.plan_model``) plans IN at the chosen API level, delegate and TF release.
2. Every refused op whose refusal a rule of ``data/fix_rules.toml`` answers is rewritten on the schema's
   object API (``ModelT``); an op version above the rule's, or a graph the rule cannot match, is bad input.
3. The result is written and read back; each rewrite is kept only if the predictor accepts every op that
   replaced it (otherwise it is dropped, reported, and the rest are redone without it).
4. ``min_runtime_version`` metadata is raised to what the added ops need; the predictor plans OUT.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fixer.argmax import argmax_int32
from deeplab_nnapi.fixer.graph import GraphEditor
from deeplab_nnapi.fixer.model_io import min_runtime_version, read_model, set_min_runtime_version, write_model
from deeplab_nnapi.fixer.pool import pool_mean
from deeplab_nnapi.fixer.resize import resize_align_corners
from deeplab_nnapi.fixer.rewrite import RewriteRecord, RuleContext
from deeplab_nnapi.fixer.table import FixTable, Rule, load_fix_table, version_tuple
from deeplab_nnapi.nnapi.delegation import DelegateOptions, DelegationPlan, make_context, plan_model
from deeplab_nnapi.nnapi.rules import load_rules, validate
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, load_model

RewriteFn = Callable[[RuleContext, Any, int, Rule], RewriteRecord]

#: The rewrite functions the rule table may name.
REWRITES: Dict[str, RewriteFn] = {
    "argmax_int32": argmax_int32,
    "resize_align_corners": resize_align_corners,
    "pool_mean": pool_mean,
}
#: The inputs and outputs each rewrite reads (how many of each, from the first): they must be there.
READS: Dict[str, Tuple[int, int]] = {
    "argmax_int32": (1, 1),
    "resize_align_corners": (2, 1),
    "pool_mean": (1, 1),
}


@dataclass(frozen=True)
class FixOptions:
    android_api: int = 29
    tf_version: Optional[str] = None  # None: the newest release the rules know
    delegate: str = "stock"  # the delegate the fixed model is for
    approximate: bool = False  # allow rewrites that are not exact (reported)

    def delegate_options(self) -> DelegateOptions:
        return DelegateOptions(android_api=self.android_api, delegate=self.delegate,
                               tf_version=self.tf_version)


@dataclass(frozen=True)
class Skipped:
    op: int
    op_type: str
    reason: str  # the predictor's refusal
    why: str  # why it was not rewritten

    def to_json(self) -> Dict[str, Any]:
        return {"op": self.op, "op_type": self.op_type, "refused": self.reason, "why": self.why}


@dataclass
class FixResult:
    data: bytes
    source: str
    options: FixOptions
    before: DelegationPlan
    after: DelegationPlan
    rewrites: List[RewriteRecord] = field(default_factory=list)
    skipped: List[Skipped] = field(default_factory=list)
    runtime_version: Tuple[Optional[str], Optional[str]] = (None, None)
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return all(r.exactness == "exact" for r in self.rewrites)

    @property
    def dtype_changes(self) -> List[str]:
        return [r.dtype_change for r in self.rewrites if r.dtype_change]


def _candidates(model: TFLiteModel, plan: DelegationPlan, table: FixTable, source: str):
    todo: List[Tuple[int, str, Rule]] = []
    skipped: List[Skipped] = []
    for ref in plan.refused:
        rule = table.rules.get(ref.op_type)
        if rule is None or not rule.answers(ref.reason):
            skipped.append(Skipped(ref.op, ref.op_type, ref.reason, "no rewrite rule for this refusal"))
            continue
        op = model.operators[ref.op]
        n_in, n_out = READS.get(rule.rewrite, (1, 1))
        if len(op.inputs) < n_in or len(op.outputs) < n_out or any(
            model.tensor(t) is None for t in (*op.inputs[:n_in], *op.outputs[:n_out])
        ):
            raise UsageError(f"{source}: op {ref.op} {ref.op_type}: cannot rewrite: it needs {n_in} input(s) "
                             f"and {n_out} output(s), it has inputs {list(op.inputs)} and outputs "
                             f"{list(op.outputs)} of {len(model.tensors)} tensors; not a valid model")
        if op.version > rule.max_version:
            raise UsageError(f"{source}: op {ref.op} {ref.op_type} has version {op.version}; "
                             f"the fixer knows versions 1..{rule.max_version}")
        t = model.tensor(op.inputs[0]) if op.inputs else None
        if t is None or t.type not in rule.types:
            raise UsageError(f"{source}: op {ref.op} {ref.op_type}: cannot rewrite: input type "
                             f"{t.type if t else 'none'} (the rule handles {', '.join(rule.types)})")
        if rule.rewrite not in REWRITES:
            raise UsageError(f"rule table: unknown rewrite {rule.rewrite!r}")
        todo.append((ref.op, ref.reason, rule))
    return todo, skipped


def _raise_runtime_version(model: Any, table: FixTable,
                           records: List[RewriteRecord]) -> Tuple[Optional[str], Optional[str]]:
    old = min_runtime_version(model)
    if old is None:
        return None, None
    needed = [old]
    for record in records:
        for added in record.new_op_types:
            op_type, version = added.split("/")
            needed.append(table.runtime_version(op_type, int(version)) or old)
    new = max(needed, key=version_tuple)
    if new != old:
        set_min_runtime_version(model, new)
    return old, new


def fix_bytes(data: bytes, options: Optional[FixOptions] = None, source: str = "<bytes>") -> FixResult:
    """Rewrite a model's bytes; never touches a file. Raises UsageError on bad input."""
    started = time.perf_counter()
    options = options or FixOptions()
    dopts = options.delegate_options().validated()
    table = load_fix_table()
    model_in = load_model(data, source)
    before = plan_model(model_in, dopts)
    todo, skipped = _candidates(model_in, before, table, source)
    rules = load_rules()
    ctx_rules, _ = make_context(dopts)
    dropped: Dict[int, str] = {}
    while True:
        model = read_model(data, source)
        editor = GraphEditor(model)
        ops = list(editor.sg.operators)
        ctx = RuleContext(editor, table, options.approximate, source)
        records: List[RewriteRecord] = []
        for index, reason, rule in todo:
            if index in dropped:
                continue
            record = REWRITES[rule.rewrite](ctx, ops[index], index, rule)
            record.refused = reason
            records.append(record)
        versions = _raise_runtime_version(model, table, records)
        out = write_model(model, len(data))
        model_out = load_model(out, f"{source} (rewritten)")
        position = {id(op): i for i, op in enumerate(editor.sg.operators)}
        again = False
        for record in records:
            record.new_indices = [position[id(op)] for op in record.new_ops]
            reasons = [r for i in record.new_indices
                       for r in validate(rules, model_out, model_out.operators[i], ctx_rules)]
            if reasons:
                dropped[record.op] = "; ".join(dict.fromkeys(reasons))
                again = True
        if not again:
            break
    skipped += [Skipped(i, model_in.operators[i].op_type, next(r for j, r, _ in todo if j == i),
                        f"the replacement would be refused too: {why}") for i, why in sorted(dropped.items())]
    skipped.sort(key=lambda s: s.op)
    after = plan_model(model_out, dopts)
    return FixResult(out, source, options, before, after, records, skipped, versions,
                     time.perf_counter() - started)
