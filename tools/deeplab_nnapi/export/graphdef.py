"""Small edits of frozen TensorFlow GraphDefs (protobufs only; TensorFlow for tensors' values).

Node references (``name``, ``name:1``, ``^name``), a view with consumers, constants through Identity
chains, adding constants, rerouting consumers, pruning to what outputs need. Used by the QAT rewrite
(:mod:`.bnfold`, :mod:`.qat`).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from deeplab_nnapi.native_logs import import_tensorflow


def base(ref: str) -> str:
    return ref.lstrip("^").split(":", 1)[0]


def port(ref: str) -> int:
    _, _, p = ref.partition(":")
    return int(p) if p else 0


def context(name: str) -> str:
    return name.rpartition("/")[0]


def join(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


class Graph:
    def __init__(self, gd):
        self.gd = gd
        self.by_name = {n.name: n for n in gd.node}
        self.consumers: Dict[str, List[Tuple[str, int]]] = {}
        for n in gd.node:
            for ref in n.input:
                if not ref.startswith("^"):
                    self.consumers.setdefault(base(ref), []).append((n.name, port(ref)))

    def users(self, name: str, port: Optional[int] = 0) -> List:
        return [self.by_name[c] for c, p in self.consumers.get(name, []) if port is None or p == port]

    def resolve(self, ref: str):
        n = self.by_name.get(base(ref))
        while n is not None and n.op == "Identity" and n.input:
            n = self.by_name.get(base(n.input[0]))
        return n

    def is_const(self, ref: str) -> bool:
        n = self.resolve(ref)
        return n is not None and n.op == "Const"

    def const_value(self, ref: str) -> Optional[np.ndarray]:
        n = self.resolve(ref)
        if n is None or n.op != "Const":
            return None
        return import_tensorflow().make_ndarray(n.attr["value"].tensor)

    def below(self, start: str) -> Set[str]:
        seen: Set[str] = set()
        todo = [start]
        while todo:
            for c, _ in self.consumers.get(todo.pop(), []):
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        return seen

    def unique_name(self, wanted: str) -> str:
        name, i = wanted, 1
        while name in self.by_name:
            name, i = f"{wanted}_{i}", i + 1
        return name

    def add(self, node) -> None:
        self.by_name[node.name] = node

    def reroute(self, old: str, new: str, only: Optional[Iterable[str]] = None) -> int:
        """Point every input ``old:0`` (of the nodes in ``only``, default all but ``new``) to ``new``."""
        allowed = set(only) if only is not None else None
        count = 0
        for n in self.gd.node:
            if n.name == new or (allowed is not None and n.name not in allowed):
                continue
            for i, ref in enumerate(n.input):
                if not ref.startswith("^") and base(ref) == old and port(ref) == 0:
                    n.input[i] = new
                    count += 1
        return count


def const_node(gd, name: str, value: np.ndarray):
    tf = import_tensorflow()
    n = gd.node.add()
    n.name = name
    n.op = "Const"
    n.attr["dtype"].type = tf.float32.as_datatype_enum
    n.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(value, np.float32)))
    return n


def prune(gd, outputs: Sequence[str]):
    """A copy of ``gd`` with only the nodes the ``outputs`` depend on."""
    tf = import_tensorflow()
    by_name = {n.name: n for n in gd.node}
    keep: Set[str] = set()
    todo = [base(o) for o in outputs]
    while todo:
        name = todo.pop()
        if name in keep or name not in by_name:
            continue
        keep.add(name)
        todo.extend(base(r) for r in by_name[name].input)
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(gd.versions)
    out.library.CopyFrom(gd.library)
    out.node.extend(n for n in gd.node if n.name in keep)
    return out


