"""An exported model beside a reference model: op count and sequence, input quantization, output, size.

The published single-partition DeepLab models (the seed's eight) are the yardstick for an export: the same
71 ops, uint8 input with scale 1/127 and zero point 128, int32 labels out, one NNAPI partition. The op
*sequence* may differ where the converter orders independent branches differently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from deeplab_nnapi.nnapi.tflite_model import load_model


@dataclass(frozen=True)
class ModelSummary:
    size: int
    ops: Tuple[str, ...]
    input: Dict[str, object]
    output: Dict[str, object]
    partitions: int

    @property
    def op_count(self) -> int:
        return len(self.ops)


@dataclass
class Comparison:
    model: ModelSummary
    reference: ModelSummary
    differences: List[str] = field(default_factory=list)  # what must agree and does not
    notes: List[str] = field(default_factory=list)  # what may differ and does

    @property
    def same(self) -> bool:
        return not self.differences


def summarize(model: Union[bytes, str, Path], android_api: int = 29) -> ModelSummary:
    from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model

    data = Path(model).read_bytes() if not isinstance(model, (bytes, bytearray)) else bytes(model)
    m = load_model(data)
    plan = check_model(data, DelegateOptions(android_api=android_api, delegate="patched"))
    i, o = m.tensor(m.inputs[0]), m.tensor(m.outputs[0])
    return ModelSummary(
        size=len(data), ops=tuple(op.op_type for op in m.operators),
        input={"type": i.type, "shape": list(i.shape), "scale": i.scale, "zero_point": i.zero_point},
        output={"type": o.type, "shape": list(o.shape)},
        partitions=sum(1 for n in plan.nodes if n.type == "TfLiteNnapiDelegate"))


def compare(model: Union[bytes, str, Path], reference: Union[bytes, str, Path]) -> Comparison:
    a, b = summarize(model), summarize(reference)
    c = Comparison(a, b)
    if a.op_count != b.op_count:
        c.differences.append(f"{a.op_count} ops, reference {b.op_count}")
    if Counter(a.ops) != Counter(b.ops):
        c.differences.append(f"op types {dict(Counter(a.ops))}, reference {dict(Counter(b.ops))}")
    elif a.ops != b.ops:
        moved = [i for i, (x, y) in enumerate(zip(a.ops, b.ops)) if x != y]
        c.notes.append(f"same ops in another order at {moved}: "
                       + ", ".join(f"{a.ops[i]} (reference {b.ops[i]})" for i in moved))
    for key in ("type", "shape", "zero_point"):
        if a.input[key] != b.input[key]:
            c.differences.append(f"input {key} {a.input[key]}, reference {b.input[key]}")
    if abs(float(a.input["scale"] or 0) - float(b.input["scale"] or 0)) > 1e-7:
        c.differences.append(f"input scale {a.input['scale']}, reference {b.input['scale']}")
    if a.output != b.output:
        c.differences.append(f"output {a.output}, reference {b.output}")
    if a.partitions != b.partitions:
        c.differences.append(f"{a.partitions} NNAPI partitions, reference {b.partitions}")
    return c


def reference_for(variant_name: str, models_dir: Path) -> Optional[Path]:
    """The published model of a variant: same name, or with ``_dummy_quant`` (cityscapes, ade20k)."""
    for name in (variant_name, variant_name[: -len("_quant")] + "_dummy_quant"
                 if variant_name.endswith("_quant") else variant_name):
        p = Path(models_dir) / f"{name}.tflite"
        if p.is_file():
            return p
    return None


# ----------------------------------------------------------------------------------------------------
# tensor by tensor: the fidelity of an export that took its values from a published model

TENSOR_KINDS = ("input", "weights", "bias", "activation", "constant", "output")


@dataclass
class TensorDiff:
    """One tensor of the model beside the reference's tensor in the same place of the graph."""

    kind: str  # one of TENSOR_KINDS
    role: str  # where it is: "<op role> <slot>", e.g. "CONV_2D:MobilenetV2/Conv weights"
    name: str
    reference_name: str
    type: str
    reference_type: str
    shape: Tuple[int, ...]
    reference_shape: Tuple[int, ...]
    quant: Optional[Tuple[float, int]]
    reference_quant: Optional[Tuple[float, int]]
    values: int = 0  # constants: number of values
    differing: int = 0  # constants: how many differ
    max_abs_diff: int = 0  # constants: largest difference (quantized units)

    @property
    def shape_equal(self) -> bool:
        return self.shape == self.reference_shape and self.type == self.reference_type

    @property
    def quant_equal(self) -> bool:
        """Scale (as float32, bit for bit) and zero point equal."""
        if self.quant is None or self.reference_quant is None:
            return self.quant == self.reference_quant
        return (np.float32(self.quant[0]) == np.float32(self.reference_quant[0])
                and self.quant[1] == self.reference_quant[1])

    @property
    def equal(self) -> bool:
        return self.shape_equal and self.quant_equal and self.differing == 0

    def to_json(self) -> dict:
        return {"kind": self.kind, "role": self.role, "name": self.name,
                "reference_name": self.reference_name,
                "type": self.type, "reference_type": self.reference_type, "shape": list(self.shape),
                "reference_shape": list(self.reference_shape),
                "quantization": list(self.quant) if self.quant else None,
                "reference_quantization": list(self.reference_quant) if self.reference_quant else None,
                "shape_equal": self.shape_equal, "quantization_equal": self.quant_equal,
                "values": self.values, "differing_values": self.differing, "max_abs_diff": self.max_abs_diff}


@dataclass
class Fidelity:
    """A model beside a reference tensor by tensor (see :func:`tensor_fidelity`)."""

    model: str
    reference: str
    ops: Tuple[str, ...]
    reference_ops: Tuple[str, ...]
    tensors: List[TensorDiff] = field(default_factory=list)
    unmatched: List[str] = field(default_factory=list)  # ops found in only one of the two
    option_differences: List[str] = field(default_factory=list)
    labels: Optional[Dict[str, object]] = None  # label agreement on photos (see label_agreement)

    @property
    def same_op_sequence(self) -> bool:
        return self.ops == self.reference_ops

    @property
    def op_moves(self) -> List[int]:
        return [i for i, (a, b) in enumerate(zip(self.ops, self.reference_ops)) if a != b]

    @property
    def shapes_equal(self) -> bool:
        return not self.unmatched and all(t.shape_equal for t in self.tensors)

    @property
    def quantization_equal(self) -> bool:
        return not self.unmatched and all(t.quant_equal for t in self.tensors)

    @property
    def values_equal(self) -> bool:
        return not self.unmatched and all(t.differing == 0 for t in self.tensors)

    @property
    def identical(self) -> bool:
        return (self.same_op_sequence and self.shapes_equal and self.quantization_equal and self.values_equal
                and not self.option_differences)

    def by_kind(self) -> Dict[str, Dict[str, int]]:
        out: Dict[str, Dict[str, int]] = {}
        for k in TENSOR_KINDS:
            ts = [t for t in self.tensors if t.kind == k]
            if not ts:
                continue
            out[k] = {"tensors": len(ts), "shape_differs": sum(not t.shape_equal for t in ts),
                      "quantization_differs": sum(not t.quant_equal for t in ts),
                      "tensors_with_differing_values": sum(t.differing > 0 for t in ts),
                      "values": sum(t.values for t in ts), "differing_values": sum(t.differing for t in ts),
                      "max_abs_diff": max((t.max_abs_diff for t in ts), default=0)}
        return out

    def to_json(self, per_tensor: bool = True) -> dict:
        d = {"model": self.model, "reference": self.reference, "identical": self.identical,
             "same_op_sequence": self.same_op_sequence, "op_moves": self.op_moves,
             "ops": len(self.ops), "reference_ops": len(self.reference_ops),
             "unmatched_ops": self.unmatched, "option_differences": self.option_differences,
             "shapes_equal": self.shapes_equal, "quantization_equal": self.quantization_equal,
             "values_equal": self.values_equal, "by_kind": self.by_kind(), "labels": self.labels}
        if per_tensor:
            d["tensors"] = [t.to_json() for t in self.tensors]
        return d


def _op_roles(m) -> Dict[str, int]:
    from deeplab_nnapi.export.tflite_weights import op_roles

    return op_roles(m)


def _values(m, t) -> Optional[np.ndarray]:
    v = m.constant_values(t.index, max_elements=1 << 28)
    return None if v is None else np.asarray(v)


def tensor_fidelity(model: Union[bytes, str, Path], reference: Union[bytes, str, Path],
                    model_label: str = "model", reference_label: str = "reference") -> Fidelity:
    """Every op and tensor of ``model`` beside the reference's op and tensor in the same place.

    Ops are paired by their place in the graph (a conv by its layer scope, the other ops by type and
    inputs), tensors by their slot in the paired ops (an ADD's inputs by the place they come from). Per
    tensor: type and shape, scale (float32, bit for bit) and zero point, and for constants the number of
    values that differ."""
    a = load_model(model if isinstance(model, (bytes, bytearray)) else Path(model))
    b = load_model(reference if isinstance(reference, (bytes, bytearray)) else Path(reference))
    label_a = model_label if isinstance(model, (bytes, bytearray)) else Path(model).name
    label_b = reference_label if isinstance(reference, (bytes, bytearray)) else Path(reference).name
    f = Fidelity(label_a, label_b, tuple(op.op_type for op in a.operators),
                 tuple(op.op_type for op in b.operators))
    ra, rb = _op_roles(a), _op_roles(b)
    f.unmatched = [f"{r} (model only)" for r in ra if r not in rb] + \
                  [f"{r} (reference only)" for r in rb if r not in ra]
    producer_a = {t: op.index for op in a.operators for t in op.outputs}
    producer_b = {t: op.index for op in b.operators for t in op.outputs}
    role_of_a = {i: r for r, i in ra.items()}
    role_of_b = {i: r for r, i in rb.items()}
    seen = set()
    model_inputs, model_outputs = set(a.inputs), set(a.outputs)

    def add(kind: str, where: str, ta, tb) -> None:
        if (ta.index, tb.index) in seen:  # a pair once (one side may share a tensor the other keeps apart)
            return
        seen.add((ta.index, tb.index))
        d = TensorDiff(kind, where, ta.name, tb.name, ta.type, tb.type, tuple(ta.shape), tuple(tb.shape),
                       (ta.scale, ta.zero_point) if ta.scale is not None else None,
                       (tb.scale, tb.zero_point) if tb.scale is not None else None)
        if ta.is_constant and tb.is_constant:
            va, vb = _values(a, ta), _values(b, tb)
            if va is not None and vb is not None:
                d.values = int(va.size)
                if va.shape == vb.shape and va.dtype == vb.dtype:
                    diff = np.abs(va.astype(np.int64) - vb.astype(np.int64)) if va.dtype.kind in "iu" \
                        else np.abs(va.astype(np.float64) - vb.astype(np.float64))
                    d.differing = int(np.count_nonzero(diff))
                    d.max_abs_diff = int(np.ceil(diff.max())) if diff.size else 0
                else:
                    d.differing = d.values
        f.tensors.append(d)

    def input_place(m, producer, role_of, t: int) -> str:
        return role_of[producer[t]] if t in producer else "input"

    for role in ra:
        if role not in rb:
            continue
        oa, ob = a.operators[ra[role]], b.operators[rb[role]]
        for key in sorted(set(oa.options) | set(ob.options)):
            va, vb = oa.options.get(key), ob.options.get(key)
            if va != vb and not (key == "depth_multiplier" and {va, vb} <= {0, 1}):
                f.option_differences.append(f"{role}: {key} {va}, reference {vb}")
        ins_a, ins_b = list(oa.inputs), list(ob.inputs)
        if oa.op_type == "ADD":  # pair by where the inputs come from
            by_place = {input_place(b, producer_b, role_of_b, t): t for t in ins_b}
            ins_b = [by_place.get(input_place(a, producer_a, role_of_a, t), -1) for t in ins_a]
        conv = oa.op_type in ("CONV_2D", "DEPTHWISE_CONV_2D")
        for slot, (x, y) in enumerate(zip(ins_a, ins_b)):
            if x < 0 or y < 0:
                continue
            ta, tb = a.tensors[x], b.tensors[y]
            if x in model_inputs:
                kind = "input"
            elif conv and slot == 1:
                kind = "weights"
            elif conv and slot == 2:
                kind = "bias"
            elif ta.is_constant:
                kind = "constant"
            else:
                continue  # an activation: compared where its op produces it
            add(kind, f"{role} in{slot}", ta, tb)
        for slot, (x, y) in enumerate(zip(oa.outputs, ob.outputs)):
            add("output" if x in model_outputs else "activation", f"{role} out{slot}", a.tensors[x],
                b.tensors[y])
    return f


def format_fidelity(f: Fidelity, per_tensor: bool = False) -> str:
    """A plain-text report: the op sequence, per tensor kind what differs, and (``per_tensor``) every
    tensor with a difference (all tensors when ``per_tensor == "all"``)."""
    lines = [f"{f.model} vs {f.reference}: {'IDENTICAL' if f.identical else 'differs'}",
             f"  ops: {len(f.ops)} vs {len(f.reference_ops)}; same sequence: "
             f"{'yes' if f.same_op_sequence else 'no (positions ' + str(f.op_moves) + ')'}"]
    for u in f.unmatched:
        lines.append(f"  unmatched op: {u}")
    for o in f.option_differences:
        lines.append(f"  option: {o}")
    lines.append(f"  {'kind':10} {'tensors':>7} {'shape!=':>7} {'quant!=':>7} {'with diff':>9} "
                 f"{'values':>9} {'differing':>9} {'max |d|':>7}")
    for kind, s in f.by_kind().items():
        lines.append(f"  {kind:10} {s['tensors']:7} {s['shape_differs']:7} {s['quantization_differs']:7} "
                     f"{s['tensors_with_differing_values']:9} {s['values']:9} {s['differing_values']:9} "
                     f"{s['max_abs_diff']:7}")
    if f.labels is not None:
        lines.append(f"  labels: {f.labels.get('agreement_percent')} % of pixels equal on "
                     f"{len(f.labels.get('images', []))} photos")
    if per_tensor:
        shown = f.tensors if per_tensor == "all" else [t for t in f.tensors if not t.equal]
        for t in shown:
            q = f"{t.quant[0]:.9g}/{t.quant[1]}" if t.quant else "-"
            rq = f"{t.reference_quant[0]:.9g}/{t.reference_quant[1]}" if t.reference_quant else "-"
            lines.append(f"  {t.kind:10} {t.role}: {t.type} {list(t.shape)} q {q}"
                         + ("" if t.shape_equal
                            else f" (reference {t.reference_type} {list(t.reference_shape)})")
                         + ("" if t.quant_equal else f" (reference q {rq})")
                         + (f"; {t.differing} of {t.values} values differ (max {t.max_abs_diff})"
                            if t.values else ""))
    return "\n".join(lines)
