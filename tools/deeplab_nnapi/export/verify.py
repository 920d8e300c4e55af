"""Verify an exported model: one NNAPI partition, and it runs with the right input and output.

1. Delegation: :func:`deeplab_nnapi.nnapi.delegation.check_model` with the patched delegate at Android API 29
   (NNAPI 1.2, the oldest level with ARG_MAX); anything but a single delegate partition fails, and the
   refusals are the reasons.
2. Execution: the model runs in ``ai-edge-litert`` on a test image; the input must be uint8 1xHxWx3 with
   the table's scale/zero point, the output int32 1xHxW labels in ``[0, num_classes)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.native_logs import litert_interpreter_class

ANDROID_API = 29
DELEGATE = "patched"


class VerificationFailed(CheckFailed):
    def __init__(self, message: str, reasons: Optional[List[str]] = None):
        super().__init__(message)
        self.reasons = list(reasons or [])


@dataclass
class Verification:
    delegate_partitions: int
    plan_nodes: int
    single_partition: bool
    refusals: List[str] = field(default_factory=list)
    input_spec: dict = field(default_factory=dict)
    output_spec: dict = field(default_factory=dict)
    labels_seen: List[int] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def test_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic 1xHxWx3 uint8 test image: colour gradients, a few blocks and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([255 * x / max(1, width - 1), 255 * y / max(1, height - 1),
                    127.5 + 127.5 * np.sin((x + y) / 9.0)], axis=-1)
    for _ in range(4):
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        img[y0:y0 + height // 4, x0:x0 + width // 4] = rng.integers(0, 256, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)[None]


def check_delegation(model: bytes, android_api: int = ANDROID_API, delegate: str = DELEGATE):
    try:
        from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model
    except ImportError as exc:  # pragma: no cover - the package ships it
        raise UsageError(f"delegation checker not available: {exc}") from None
    plan = check_model(model, DelegateOptions(android_api=android_api, delegate=delegate))
    partitions = sum(1 for n in plan.nodes if n.type == "TfLiteNnapiDelegate")
    refusals = [f"op {r.op} {r.op_type}: {r.reason}" for r in plan.refused]
    return plan, partitions, refusals


def run_model(model: bytes, image: np.ndarray) -> Tuple[np.ndarray, dict, dict]:
    try:
        Interpreter, OpResolverType = litert_interpreter_class()
    except ImportError:
        raise UsageError("running models needs ai-edge-litert: pip install 'deeplab-nnapi[export]'") from None
    # TFLite's own uint8 kernels, without the default XNNPACK delegate: the reference kernels, the same
    # results on every CPU
    interp = Interpreter(model_content=model,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    inputs, outputs = interp.get_input_details(), interp.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise VerificationFailed(f"model has {len(inputs)} inputs, {len(outputs)} outputs; expected one each")
    i, o = inputs[0], outputs[0]
    ispec = {"name": i["name"], "shape": [int(v) for v in i["shape"]], "dtype": np.dtype(i["dtype"]).name,
             "scale": float(i["quantization"][0]), "zero_point": int(i["quantization"][1])}
    ospec = {"name": o["name"], "shape": [int(v) for v in o["shape"]], "dtype": np.dtype(o["dtype"]).name}
    if ispec["dtype"] != "uint8" or tuple(ispec["shape"]) != image.shape:
        return np.empty(0), ispec, ospec
    interp.set_tensor(i["index"], image)
    interp.invoke()
    return interp.get_tensor(o["index"]).copy(), ispec, ospec


# activations/weights uint8; bias, shapes, axis, labels int32 (an int64 ArgMax: see the output check)
_ALLOWED_TENSOR_TYPES = ("UINT8", "INT32", "INT64")


def quantization_problems(model: bytes) -> List[str]:
    """A uint8 model for NNAPI 1.2: no float/int8/int64 tensors, no (de)quantize ops in the graph."""
    import tflite

    names = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    ops = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    try:
        m = tflite.Model.GetRootAsModel(model, 0)
        sg = m.Subgraphs(0)
        bad = {}
        for i in range(sg.TensorsLength()):
            t = names.get(sg.Tensors(i).Type(), str(sg.Tensors(i).Type()))
            if t not in _ALLOWED_TENSOR_TYPES:
                bad[t] = bad.get(t, 0) + 1
        conv = set()
        for i in range(sg.OperatorsLength()):
            oc = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
            name = ops.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "?")
            if name in ("QUANTIZE", "DEQUANTIZE"):
                conv.add(f"{name} (op {i})")
    except Exception as exc:  # a flatbuffer the reader cannot walk
        return [f"cannot read the model's tensors: {exc}"]
    problems = []
    if bad:
        kinds = ", ".join(f"{n} {t.lower()}" for t, n in sorted(bad.items()))
        problems.append(f"not a fully uint8 model: {kinds} tensor(s)")
    if conv:
        problems.append(f"has {', '.join(sorted(conv))}")
    return problems


def verify_model(model: bytes, num_classes: int, input_size: Tuple[int, int], *, mean: float = 128.0,
                 std: float = 127.0, android_api: int = ANDROID_API, delegate: str = DELEGATE,
                 image: Optional[np.ndarray] = None) -> Verification:
    """Check delegation and execution; return the findings (``problems`` empty when all holds)."""
    h, w = input_size
    plan, partitions, refusals = check_delegation(model, android_api, delegate)
    v = Verification(delegate_partitions=partitions, plan_nodes=len(plan.nodes),
                     single_partition=bool(plan.single_partition), refusals=refusals)
    if not v.single_partition:
        v.problems.append(f"{len(plan.nodes)} nodes / {partitions} delegate partition(s) under the "
                          f"{delegate} delegate at API {android_api}, not one partition"
                          + (f": {'; '.join(refusals)}" if refusals else ""))
    v.problems.extend(quantization_problems(model))
    img = image if image is not None else test_image(h, w)
    out, v.input_spec, v.output_spec = run_model(model, img)
    if v.input_spec["dtype"] != "uint8" or v.input_spec["shape"] != [1, h, w, 3]:
        v.problems.append(f"input is {v.input_spec['dtype']} {v.input_spec['shape']}, "
                          f"expected uint8 [1, {h}, {w}, 3]")
    elif (abs(v.input_spec["scale"] - 1.0 / std) > 1e-6 * max(1.0, 1.0 / std)
          or v.input_spec["zero_point"] != round(mean)):
        v.problems.append(f"input quantization scale {v.input_spec['scale']:.6g} zero point "
                          f"{v.input_spec['zero_point']}, expected {1.0 / std:.6g} and {round(mean)}")
    if v.output_spec["dtype"] != "int32" or v.output_spec["shape"] != [1, h, w]:
        v.problems.append(f"output is {v.output_spec['dtype']} {v.output_spec['shape']}, "
                          f"expected int32 [1, {h}, {w}]")
    elif out.size:
        lo, hi = int(out.min()), int(out.max())
        if lo < 0 or hi >= num_classes:
            v.problems.append(f"output labels span {lo}..{hi}, outside 0..{num_classes - 1}")
        v.labels_seen = sorted(int(x) for x in np.unique(out))
    return v


def require(v: Verification) -> None:
    if v.problems:
        raise VerificationFailed("; ".join(v.problems), v.refusals)
