"""TFLite's own graph partitioning for a delegate, re-implemented.

* :func:`partition_graph` is ``PartitionGraphIntoIndependentNodeSubsets`` (tensorflow/lite/graph_info.cc,
  greedy mode, the default): epoch by epoch, the first ready node in execution order fixes the epoch's kind
  (delegated or not) and every ready node of that kind joins, pass after pass, until none joins.
* :func:`limit_partitions` is ``StatefulNnApiDelegate::LimitDelegatedPartitions``: when more delegated
  subsets exist than ``max_number_delegated_partitions`` (> 0), keep the largest by node count.
  TFLite sorts with ``std::sort`` (largest first); for the small arrays involved (< 16 with libstdc++, < 31
  with libc++) that is an insertion sort, i.e. stable: ties keep graph order. Python's sort is stable too.
* :func:`replace_with_delegate` is ``Subgraph::ReplaceNodeSubsetsWithDelegateKernels``: the kept nodes are
  partitioned again; each delegated subset becomes one new node, numbered after the last existing node in
  subset order; non-delegated ops keep their index. The result is the new execution plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Set, Tuple

NOT_READY = -1
ALWAYS_READY = -2


@dataclass
class NodeSubset:
    delegated: bool
    nodes: List[int] = field(default_factory=list)
    input_tensors: List[int] = field(default_factory=list)
    output_tensors: List[int] = field(default_factory=list)


@dataclass(frozen=True)
class GraphNode:
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]


def partition_graph(
    nodes: Sequence[GraphNode],
    num_tensors: int,
    graph_outputs: Iterable[int],
    to_delegate: Iterable[int],
    greedily: bool = True,
) -> List[NodeSubset]:
    """Split the execution plan (``nodes`` in order) into subsets of the same kind, as TFLite does."""
    kind = [False] * len(nodes)
    for n in to_delegate:
        kind[n] = True
    tensor_epochs = [ALWAYS_READY] * num_tensors
    for node in nodes:
        for t in node.outputs:
            if t >= 0:
                tensor_epochs[t] = NOT_READY
    node_epochs = [NOT_READY] * len(nodes)
    subsets: List[NodeSubset] = []

    def update(i: int) -> bool:
        if node_epochs[i] != NOT_READY:
            return False
        node = nodes[i]
        for t in node.inputs:
            if t >= 0 and tensor_epochs[t] == NOT_READY:
                return False
        current = subsets[-1]
        epoch = len(subsets) - 1
        if current.delegated is None:  # type: ignore[comparison-overlap]
            current.delegated = kind[i]
        if current.delegated != kind[i]:
            return False
        node_epochs[i] = epoch
        current.nodes.append(i)
        for t in node.outputs:
            if t >= 0:
                tensor_epochs[t] = epoch
        for t in node.inputs:
            if t < 0:
                continue
            e = tensor_epochs[t]
            if e != epoch:
                current.input_tensors.append(t)
                if e >= 0:
                    subsets[e].output_tensors.append(t)
        return True

    while True:
        subsets.append(NodeSubset(delegated=None))  # type: ignore[arg-type]
        stop = False
        while not stop:
            did_something = False
            for i in range(len(nodes)):
                if update(i):
                    did_something = True
                elif did_something and not greedily:
                    stop = True
                    break
            if not did_something:
                stop = True
        if not subsets[-1].nodes:
            subsets.pop()
            break
    for t in graph_outputs:
        if 0 <= t < num_tensors and tensor_epochs[t] >= 0:
            subsets[tensor_epochs[t]].output_tensors.append(t)
    for s in subsets:
        s.input_tensors = sorted(set(s.input_tensors))
        s.output_tensors = sorted(set(s.output_tensors))
    return subsets


def limit_partitions(subsets: Sequence[NodeSubset], max_partitions: int) -> Optional[List[int]]:
    """The nodes to delegate after ``LimitDelegatedPartitions``; None when no limit applies."""
    delegated = [s for s in subsets if s.delegated]
    if max_partitions <= 0 or len(delegated) <= max_partitions:
        return None
    ranked = sorted(delegated, key=lambda s: len(s.nodes), reverse=True)  # stable, as TFLite's small sort
    keep: List[int] = []
    for s in ranked[:max_partitions]:
        keep.extend(s.nodes)
    return keep


@dataclass(frozen=True)
class PlanEntry:
    index: int  # node index in the new execution plan (new delegate nodes: after the last op)
    delegated: bool
    ops: Tuple[int, ...]  # original op indices, in execution order
    outputs: Tuple[int, ...]  # output tensors (for a delegate node: the subset's outputs, sorted)


def replace_with_delegate(
    nodes: Sequence[GraphNode],
    num_tensors: int,
    graph_outputs: Sequence[int],
    supported: Iterable[int],
    max_partitions: int = 3,
) -> List[PlanEntry]:
    """The execution plan after the delegate has claimed ``supported`` nodes."""
    supported_set: Set[int] = set(supported)
    if not supported_set:
        return [PlanEntry(i, False, (i,), tuple(n.outputs)) for i, n in enumerate(nodes)]
    subsets = partition_graph(nodes, num_tensors, graph_outputs, sorted(supported_set))
    kept = limit_partitions(subsets, max_partitions)
    if kept is not None:
        subsets = partition_graph(nodes, num_tensors, graph_outputs, sorted(kept))
    plan: List[PlanEntry] = []
    next_index = len(nodes)
    for s in subsets:
        if s.delegated:
            plan.append(PlanEntry(next_index, True, tuple(s.nodes), tuple(s.output_tensors)))
            next_index += 1
        else:
            for i in s.nodes:
                plan.append(PlanEntry(i, False, (i,), tuple(t for t in nodes[i].outputs if t >= 0)))
    return plan
