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
