"""What a partition diagram shows about a delegation plan, without drawing anything: the panels (a model's
plan under some delegate options), each node's colour, the data flow between nodes, measured times from a
profile, and the summary line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from deeplab_nnapi.nnapi.delegation import DelegateOptions, DelegationPlan, Node, plan_model
from deeplab_nnapi.nnapi.profile import Profile, ProfileNode, compare
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, format_ranges, load_model

#: One colour per delegate partition, in execution order (Vega's category10 without its red and grey, so
#: that neither is mistaken for "refused" or "CPU").
PARTITION_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#eeca3b", "#9d755d", "#ff9da6")
CPU_COLOR = "#bdbdbd"
REFUSED_COLOR = "#c0392b"

#: Short op names for the op cells; others are cut from the op's own name.
OP_ABBREVIATIONS: Dict[str, str] = {
    "CONV_2D": "CONV",
    "DEPTHWISE_CONV_2D": "DWCONV",
    "AVERAGE_POOL_2D": "AVGPOOL",
    "MAX_POOL_2D": "MAXPOOL",
    "RESIZE_BILINEAR": "RESIZE",
    "RESIZE_NEAREST_NEIGHBOR": "RESIZE_NN",
    "CONCATENATION": "CONCAT",
    "ARG_MAX": "ARGMAX",
    "SPACE_TO_BATCH_ND": "S2B",
    "BATCH_TO_SPACE_ND": "B2S",
    "FULLY_CONNECTED": "FC",
    "QUANTIZE": "QUANT",
    "DEQUANTIZE": "DEQUANT",
    "TfLiteNnapiDelegate": "NNAPI",
}


def abbreviate(op_type: str) -> str:
    return OP_ABBREVIATIONS.get(op_type, op_type.replace("_2D", "")[:8])


def ops_id(ops: Sequence[int]) -> str:
    """Op indices for an SVG id: ranges joined by '_' ("0-60_64")."""
    return format_ranges(ops).replace(" + ", "_")


@dataclass
class Panel:
    """One model under one set of delegate options."""

    label: str  # usually the model file's name
    model: TFLiteModel
    plan: DelegationPlan
    profile: Optional[Profile] = None
    times: List[Optional[ProfileNode]] = field(default_factory=list)  # per plan node, from the profile
    profile_note: str = ""  # why the profile is not shown, or how it differs

    @property
    def options(self) -> DelegateOptions:
        return self.plan.options or DelegateOptions()

    def node_color(self, node: Node) -> str:
        if not node.is_delegate:
            return CPU_COLOR
        k = [n.index for n in self.plan.delegate_nodes].index(node.index)
        return PARTITION_COLORS[k % len(PARTITION_COLORS)]

    def partition_number(self, node: Node) -> Optional[int]:
        if not node.is_delegate:
            return None
        return [n.index for n in self.plan.delegate_nodes].index(node.index) + 1

    def refusals(self) -> Dict[int, str]:
        return {r.op: r.reason for r in self.plan.refused}

    def options_line(self) -> str:
        o = self.options
        limit = o.max_partitions or "unlimited"
        extra = f", accelerator {o.accelerator}" if o.accelerator else ""
        return (f"{o.delegate} delegate · TF {self.plan.tf_version} rules · Android API {o.android_api} · "
                f"max partitions {limit}{extra}")

    def summary_line(self) -> str:
        plan = self.plan
        d = len(plan.delegate_nodes)
        n = len(plan.nodes)
        on = sum(len(x.ops) for x in plan.delegate_nodes)
        share = 100.0 * on / plan.num_ops if plan.num_ops else 0.0
        nodes = f"{n} node" if n == 1 else f"{n} nodes"
        text = f"{nodes} ({d} NNAPI, {n - d} CPU) · {on} of {plan.num_ops} ops on NNAPI ({share:.0f} %)"
        if self.times and all(t is not None for t in self.times) and self.profile is not None:
            text += f" · {100.0 - self.profile.cpu_fallback_percent:.1f} % of the run on NNAPI (profile)"
        return text

    def edges(self) -> List[Tuple[int, int]]:
        """(from, to) positions in plan.nodes where a tensor one node makes is read by the other."""
        node_of: Dict[int, int] = {}
        for pos, node in enumerate(self.plan.nodes):
            for op in node.ops:
                node_of[op] = pos
        producer: Dict[int, int] = {}
        for op in self.model.operators:
            for t in op.outputs:
                if op.index in node_of:
                    producer[t] = node_of[op.index]
        found: Set[Tuple[int, int]] = set()
        for op in self.model.operators:
            dst = node_of.get(op.index)
            for t in op.inputs:
                src = producer.get(t)
                if src is not None and dst is not None and src != dst:
                    found.add((src, dst))
        return sorted(found)


def attach_profile(panel: Panel, profile: Optional[Profile]) -> Panel:
    """Give each node its measured time when the profile has the plan's nodes; otherwise say why not."""
    panel.profile = profile
    panel.times = []
    panel.profile_note = ""
    if profile is None:
        return panel
    nodes = panel.plan.nodes
    if len(profile.nodes) != len(nodes):
        panel.profile_note = (f"profile {Path(profile.source).name}: {len(profile.nodes)} nodes, this plan "
                              f"{len(nodes)}: times not shown")
        return panel
    panel.times = list(profile.nodes)
    diffs = compare(nodes, profile)
    if diffs:
        panel.profile_note = (f"profile {Path(profile.source).name} differs at node(s) "
                              + ", ".join(str(d.position + 1) for d in diffs))
    else:
        panel.profile_note = f"times: profile {Path(profile.source).name}, node for node as predicted"
    return panel


def make_panel(model: Union[str, Path, bytes, TFLiteModel], options: Optional[DelegateOptions] = None,
               label: Optional[str] = None, profile: Optional[Profile] = None) -> Panel:
    """Load a model (path, bytes or parsed), plan it and wrap it as a panel."""
    m = model if isinstance(model, TFLiteModel) else load_model(model)
    plan = plan_model(m, options)
    if label is None:
        label = Path(m.source).name if isinstance(model, (str, Path)) else (m.source or "model")
    return attach_profile(Panel(label, m, plan), profile)
