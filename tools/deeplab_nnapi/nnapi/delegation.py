"""Predict how TFLite's NNAPI delegate partitions a model, without a phone.

Public API::

    from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model
    plan = check_model("model.tflite", DelegateOptions(android_api=29, delegate="stock"))
    plan.nodes, plan.refused, plan.single_partition, plan.to_json()

The prediction follows the delegate's ``DoPrepare``: every node of the execution plan is validated with
the per-op rules of :mod:`deeplab_nnapi.nnapi.rules` (``NNAPIDelegateKernel::Validate``), the supported
ones are grouped by TFLite's partitioner and cut to ``max_number_delegated_partitions``
(:mod:`deeplab_nnapi.nnapi.partition`). Assumed: the device has an NNAPI accelerator besides the CPU reference
(otherwise the stock delegate does nothing at all on API >= 29), the accelerator supports every op the
delegate hands it, and the target feature level equals the Android API level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.partition import GraphNode, replace_with_delegate
from deeplab_nnapi.nnapi.rules import (
    MAX_API,
    MIN_API,
    Context,
    Release,
    is_accelerator_specified,
    load_rules,
    target_feature_level,
    validate,
)
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, format_ranges, load_model

DELEGATE_NODE_TYPE = "TfLiteNnapiDelegate"
DELEGATES = ("stock", "patched")
#: What our patch set removes from the delegate (``--delegate patched``).
PATCHED_CHECKS = frozenset({"pool-area"})


@dataclass(frozen=True)
class DelegateOptions:
    android_api: int = 29
    delegate: str = "patched"  # "stock" | "patched"
    tf_version: Optional[str] = None  # None = newest release the rules know
    accelerator: Optional[str] = None  # StatefulNnApiDelegate::Options::accelerator_name
    disallow_nnapi_cpu: bool = False
    max_partitions: int = 3  # max_number_delegated_partitions; <= 0: no limit

    def validated(self) -> DelegateOptions:
        if not isinstance(self.android_api, int) or not MIN_API <= self.android_api <= MAX_API:
            raise UsageError(f"android API level {self.android_api!r} out of range {MIN_API}..{MAX_API}")
        if self.delegate not in DELEGATES:
            raise UsageError(f"delegate {self.delegate!r}: expected one of {', '.join(DELEGATES)}")
        if not isinstance(self.max_partitions, int):
            raise UsageError(f"max_partitions {self.max_partitions!r} is not an integer")
        return self


@dataclass(frozen=True)
class Node:
    type: str  # "TfLiteNnapiDelegate" or the CPU op's name, e.g. "ARG_MAX"
    ops: List[int]
    index: int  # node index in the execution plan after delegation, as benchmark_model prints it
    name: str  # output tensor names, as benchmark_model's profiler prints them: "[a, b]"

    @property
    def is_delegate(self) -> bool:
        return self.type == DELEGATE_NODE_TYPE

    @property
    def label(self) -> str:
        """``[name]:index`` as in the profile's Name column."""
        return f"{self.name}:{self.index}"

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.type, "ops": list(self.ops), "index": self.index, "name": self.name}


@dataclass(frozen=True)
class Refusal:
    op: int
    op_type: str
    reason: str

    def to_json(self) -> Dict[str, Any]:
        return {"op": self.op, "op_type": self.op_type, "reason": self.reason}


@dataclass
class DelegationPlan:
    nodes: List[Node] = field(default_factory=list)
    refused: List[Refusal] = field(default_factory=list)
    model: str = ""
    num_ops: int = 0
    options: Optional[DelegateOptions] = None
    tf_version: str = ""
    is_accelerator_specified: Optional[bool] = False  # None: not known (the real delegate's answer)
    not_delegated: List[int] = field(default_factory=list)  # supported, but cut by max_partitions
    notes: List[str] = field(default_factory=list)
    #: who answered: "predictor" (our rules) or "probe" (the real delegate, deeplab_nnapi.probe)
    engine: str = "predictor"
    source: Optional[Dict[str, Any]] = None  # probe: the tree and build the delegate came from
    messages: List[str] = field(default_factory=list)  # probe: what the delegate logged
    status: str = "ok"

    @property
    def single_partition(self) -> bool:
        return self.status == "ok" and len(self.nodes) == 1 and self.nodes[0].is_delegate

    @property
    def delegate_nodes(self) -> List[Node]:
        return [n for n in self.nodes if n.is_delegate]

    def to_json(self) -> Dict[str, Any]:
        opts = self.options or DelegateOptions()
        return {
            "model": self.model,
            "nodes": [n.to_json() for n in self.nodes],
            "refused": [r.to_json() for r in self.refused],
            "single_partition": self.single_partition,
            "delegate_nodes": len(self.delegate_nodes),
            "cpu_nodes": len(self.nodes) - len(self.delegate_nodes),
            "num_ops": self.num_ops,
            "not_delegated_by_partition_limit": list(self.not_delegated),
            "options": {
                "android_api": opts.android_api,
                "delegate": opts.delegate,
                "tf_version": self.tf_version,
                "accelerator": opts.accelerator,
                "disallow_nnapi_cpu": opts.disallow_nnapi_cpu,
                "max_partitions": opts.max_partitions,
                "is_accelerator_specified": self.is_accelerator_specified,
            },
            "notes": list(self.notes),
            "engine": self.engine,
            "status": self.status,
            **({"source": self.source, "delegate_log": list(self.messages)}
               if self.engine == "probe" else {}),
        }


def make_context(options: DelegateOptions) -> tuple:
    """(Context, Release) for the options: the inputs Validate() gets besides the node."""
    rules = load_rules()
    release: Release = rules.release(options.tf_version)
    accel = is_accelerator_specified(
        release, options.android_api, options.accelerator, options.disallow_nnapi_cpu
    )
    removed = PATCHED_CHECKS if options.delegate == "patched" else frozenset()
    level = target_feature_level(rules, options.android_api, options.accelerator, options.disallow_nnapi_cpu)
    return Context(options.android_api, release, accel, removed, level), release


def plan_model(model: TFLiteModel, options: Optional[DelegateOptions] = None) -> DelegationPlan:
    """The delegation plan for an already parsed model."""
    options = (options or DelegateOptions()).validated()
    rules = load_rules()
    ctx, release = make_context(options)
    refused: List[Refusal] = []
    supported: List[int] = []
    for op in model.operators:
        reasons = validate(rules, model, op, ctx)
        if reasons:
            refused.append(Refusal(op.index, op.op_type, "; ".join(reasons)))
        else:
            supported.append(op.index)
    graph = [GraphNode(op.inputs, op.outputs) for op in model.operators]
    max_partitions = options.max_partitions if release.max_partitions else 0
    entries = replace_with_delegate(graph, len(model.tensors), model.outputs, supported, max_partitions)
    nodes: List[Node] = []
    delegated_ops = set()
    for e in entries:
        names = [model.tensors[t].name for t in e.outputs if 0 <= t < len(model.tensors)]
        name = "[" + ", ".join(names) + "]"
        if e.delegated:
            nodes.append(Node(DELEGATE_NODE_TYPE, list(e.ops), e.index, name))
            delegated_ops.update(e.ops)
        else:
            op = model.operators[e.ops[0]]
            # benchmark_model names a custom op's node by its custom code
            op_type = op.custom_code if op.op_type == "CUSTOM" and op.custom_code else op.op_type
            nodes.append(Node(op_type, list(e.ops), e.index, name))
    plan = DelegationPlan(
        nodes,
        refused,
        model.source,
        len(model.operators),
        options,
        release.version,
        ctx.is_accelerator_specified,
    )
    plan.not_delegated = [i for i in supported if i not in delegated_ops]
    for i in sorted(delegated_ops):
        why = rules.crash_reason(model, model.operators[i])
        if why:
            plan.status = "crash"
            plan.notes.append(f"op {i} {model.operators[i].op_type}: the delegate crashes: {why}")
    if plan.not_delegated:
        plan.notes.append(
            f"ops {format_ranges(plan.not_delegated)} are supported but run on CPU: more than "
            f"{max_partitions} delegate partitions were possible (max_number_delegated_partitions)"
        )
    if options.max_partitions != max_partitions and len(plan.delegate_nodes) > options.max_partitions:
        plan.notes.append(f"TF {release.version} has no max_number_delegated_partitions: no partition limit")
    if options.disallow_nnapi_cpu and release.accelerator == "name":
        plan.notes.append(
            f"TF {release.version}: disallow_nnapi_cpu does not make is_accelerator_specified true "
            "(only a named accelerator does)"
        )
    fp16 = [
        op.index
        for op in model.operators
        if op.op_type == "DEQUANTIZE"
        and op.inputs
        and model.tensor(op.inputs[0]) is not None
        and model.tensors[op.inputs[0]].type == "FLOAT16"
        and model.tensors[op.inputs[0]].is_constant
    ]
    if fp16:
        plan.notes.append(
            "float16 weights (DEQUANTIZE of constant FLOAT16): the delegate then partitions with "
            "FP16GraphPartitionHelper, which this prediction does not model"
        )
    if model.num_subgraphs > 1:
        plan.notes.append(f"model has {model.num_subgraphs} subgraphs; only the primary one is checked")
    return plan


def check_model(
    model: Union[str, Path, bytes, bytearray, TFLiteModel], options: Optional[DelegateOptions] = None
) -> DelegationPlan:
    """Predict the delegation of a model file (or its bytes). Raises UsageError on missing/corrupt input."""
    if not isinstance(model, TFLiteModel):
        model = load_model(model)
    return plan_model(model, options)
