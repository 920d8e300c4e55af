"""TFLite's partitioner and the partition limit, on small hand-made graphs."""

from __future__ import annotations

from deeplab_nnapi.nnapi.partition import GraphNode, limit_partitions, partition_graph, replace_with_delegate


def chain(n: int):
    """op i reads tensor i and writes tensor i+1."""
    return [GraphNode((i,), (i + 1,)) for i in range(n)], n + 1


def test_single_kind_chain_is_one_subset():
    nodes, nt = chain(5)
    subsets = partition_graph(nodes, nt, [5], range(5))
    assert [(s.delegated, s.nodes) for s in subsets] == [(True, [0, 1, 2, 3, 4])]
    assert subsets[0].output_tensors == [5]


def test_refused_middle_op_splits_chain_in_three():
    nodes, nt = chain(5)
    plan = replace_with_delegate(nodes, nt, [5], [0, 1, 3, 4])
    assert [(p.delegated, p.ops, p.index) for p in plan] == [
        (True, (0, 1), 5),
        (False, (2,), 2),
        (True, (3, 4), 6),
    ]


def test_greedy_epoch_pulls_independent_branch_forward():
    # DeepLab's shape: op1 (refused) and op3 (supported) both read op0's output; op2 reads op1.
    nodes = [
        GraphNode((0,), (1,)),
        GraphNode((1,), (2,)),
        GraphNode((2,), (3,)),
        GraphNode((1,), (4,)),
        GraphNode((3, 4), (5,)),
    ]
    greedy = partition_graph(nodes, 6, [5], [0, 2, 3, 4])
    assert [(s.delegated, s.nodes) for s in greedy] == [(True, [0, 3]), (False, [1]), (True, [2, 4])]
    # subset outputs: tensors read by other subsets, sorted
    assert greedy[0].output_tensors == [1, 4]
    # TFLite's non-greedy mode (delegate clustering disabled) keeps execution order instead
    ordered = partition_graph(nodes, 6, [5], [0, 2, 3, 4], greedily=False)
    assert [(s.delegated, s.nodes) for s in ordered] == [(True, [0]), (False, [1]), (True, [2, 3, 4])]


def test_cpu_epoch_first_when_first_ready_node_is_refused():
    nodes = [GraphNode((0,), (1,)), GraphNode((0,), (2,)), GraphNode((1, 2), (3,))]
    plan = replace_with_delegate(nodes, 4, [3], [1, 2])
    assert [(p.delegated, p.ops, p.index) for p in plan] == [(False, (0,), 0), (True, (1, 2), 3)]


def test_limit_keeps_largest_partitions_ties_in_graph_order():
    # supported runs of length 2, 1, 2, 1 separated by refused ops
    nodes, nt = chain(9)
    supported = [0, 1, 3, 5, 6, 8]
    subsets = partition_graph(nodes, nt, [9], supported)
    assert [s.nodes for s in subsets if s.delegated] == [[0, 1], [3], [5, 6], [8]]
    assert limit_partitions(subsets, 2) == [0, 1, 5, 6]
    assert sorted(limit_partitions(subsets, 3)) == [0, 1, 3, 5, 6]  # tie 1 vs 1: the earlier one
    assert limit_partitions(subsets, 4) is None
    assert limit_partitions(subsets, 0) is None
    plan = replace_with_delegate(nodes, nt, [9], supported, max_partitions=2)
    assert [(p.delegated, p.ops) for p in plan] == [
        (True, (0, 1)),
        (False, (2,)),
        (False, (3,)),
        (False, (4,)),
        (True, (5, 6)),
        (False, (7,)),
        (False, (8,)),
    ]
    assert [p.index for p in plan if p.delegated] == [9, 10]


def test_nothing_supported_keeps_plan():
    nodes, nt = chain(3)
    plan = replace_with_delegate(nodes, nt, [3], [])
    assert [(p.delegated, p.ops, p.index) for p in plan] == [
        (False, (0,), 0),
        (False, (1,), 1),
        (False, (2,), 2),
    ]
