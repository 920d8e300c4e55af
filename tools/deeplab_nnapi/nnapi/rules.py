"""The NNAPI delegate's per-op validation rules, evaluated against a model.

The rules themselves are data (``data/nnapi_rules.toml``): per op a list of checks, each with the conditions
under which the delegate applies it (Android API range, TF release / code era, input type, options,
accelerator) and the thing it requires, with the delegate's own failure message. This module only knows
how to evaluate the small vocabulary of checks the table uses; it rejects a table with unknown keys.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.tflite_model import OperatorInfo, TensorInfo, TFLiteModel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

_RELEASE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-.]?(?:rc|dev|post)\d*)?$")


def version_key(text: str) -> Tuple[int, int]:
    """(major, minor) of a TF release like "2.15", "2.15.1" or "2.16.0rc0"; ValueError otherwise."""
    m = _RELEASE.match(str(text).strip())
    if not m:
        raise ValueError(text)
    return int(m.group(1)), int(m.group(2))


RULES_PATH = Path(__file__).resolve().parents[1] / "data" / "nnapi_rules.toml"

#: Android API levels the delegate distinguishes (NNAPI 1.0 = 27 ... ).
MIN_API, MAX_API = 27, 35
NNAPI_REFERENCE = "nnapi-reference"

_CONDITIONS = {
    "api_min",
    "api_max",
    "tf_min",
    "tf_max",
    "era",
    "if_input",
    "if_input_type",
    "if_input_type_not",
    "if_option_eq",
    "if_option_ne",
    "if_num_inputs",
    "if_num_inputs_min",
    "if_accelerator",
    "if_rank0",
    "if_not_const_input",
}
_MODIFIERS = {"reason", "patch", "input", "output", "rank_of"}
_REQUIREMENTS = {
    "max_version",
    "op_version",
    "op_version_in",
    "min_api",
    "input_type",
    "output_type",
    "output_type_not",
    "option_eq",
    "option_in",
    "option_nonempty",
    "const_input",
    "num_inputs",
    "num_inputs_min",
    "bias_present",
    "rank_max",
    "rank_eq",
    "rank_min",
    "rank_in",
    "same_quant",
    "pool_area",
    "not_hybrid",
    "restricted_scales",
    "per_tensor_filter",
    "output_hw_equal",
    "inputs_same_quant",
    "no_zero_dims",
    "scale_positive",
    "zero_point_zero",
    "const_equals",
    "same_shape",
    "pack_axis_not_last",
    "accept",
}
_QUANTIZED = ("UINT8", "INT8")


@dataclass(frozen=True)
class Release:
    version: str
    era: str
    pool_check: str
    accelerator: str  # "name" | "name_or_nocpu"
    max_partitions: bool


@dataclass(frozen=True)
class PoolCheck:
    shape: str
    where: str
    quantized_only: bool
    accelerator_escape: bool
    max_area: int
    reason: str
    patched_max_area: int  # the limit our patch set leaves in place (patches/: 256 -> 65 * 65)


@dataclass(frozen=True)
class RuleSet:
    ops: Mapping[str, Tuple[Mapping[str, Any], ...]]
    releases: Mapping[str, Release]
    pool_checks: Mapping[str, PoolCheck]
    types: Mapping[str, Tuple[str, ...]]
    not_modelled: Tuple[str, ...]
    not_modelled_reason: str
    unknown_reason: str
    #: Android API level -> the NNAPI runtime feature level a device of that level reports
    feature_levels: Mapping[int, int] = None  # type: ignore[assignment]
    #: (ops, absent input index, reason): delegated ops the delegate crashes on while mapping them
    crashes: Tuple[Tuple[Tuple[str, ...], int, str], ...] = ()

    def crash_reason(self, model: TFLiteModel, op: OperatorInfo) -> Optional[str]:
        """Why the delegate crashes when this op is delegated, or None."""
        for ops, absent, reason in self.crashes:
            if op.op_type in ops and len(op.inputs) > absent and op.inputs[absent] == -1:
                return reason
        return None

    def runtime_feature_level(self, android_api: int) -> int:
        return (self.feature_levels or {}).get(android_api, android_api)

    @property
    def newest_release(self) -> str:
        return max(self.releases, key=version_key)

    def release(self, tf_version: Optional[str]) -> Release:
        if tf_version is None:
            return self.releases[self.newest_release]
        text = str(tf_version).strip()
        try:
            major, minor = version_key(text)
        except ValueError:
            raise UsageError(f"--tf-version {text!r} is not a version like 2.15") from None
        key = f"{major}.{minor}"
        if key not in self.releases:
            known = sorted(self.releases, key=version_key)
            raise UsageError(
                f"--tf-version {text}: no rules for that release (known: {known[0]} to {known[-1]})"
            )
        return self.releases[key]


@dataclass(frozen=True)
class Context:
    """What Validate() is given besides the node: target API level, release, accelerator flag, patches."""

    android_api: int
    release: Release
    is_accelerator_specified: bool
    removed_checks: frozenset  # patch names whose checks are gone (patched delegate)
    #: what Validate() gets as android_sdk_version: DoPrepare's target_feature_level (see
    #: target_feature_level); api_min / api_max / min_api compare against it. None: the API level.
    feature_level: Optional[int] = None

    @property
    def level(self) -> int:
        return self.android_api if self.feature_level is None else self.feature_level


def is_accelerator_specified(
    release: Release, android_api: int, accelerator: Optional[str], disallow_nnapi_cpu: bool
) -> bool:
    """``ShouldUseTargetDevices(options, nnapi, /*exclude_nnapi_reference=*/true)`` for that release."""
    if release.accelerator == "name":
        # TF <= 2.1 DoPrepare: only on NNAPI 1.2+, only a named device other than the CPU reference.
        return accelerator is not None and accelerator != NNAPI_REFERENCE and android_api >= 29
    if accelerator is not None and accelerator == NNAPI_REFERENCE:
        return False
    return (disallow_nnapi_cpu and android_api >= 29) or accelerator is not None


def target_feature_level(
    rules: RuleSet, android_api: int, accelerator: Optional[str], disallow_nnapi_cpu: bool
) -> int:
    """DoPrepare's ``target_feature_level``, which Validate() receives as ``android_sdk_version``: the
    device's Android API level, unless the delegate targets devices (``ShouldUseTargetDevices`` without
    excluding the CPU reference: an accelerator is named, or the CPU is disallowed, from API 29) - then the
    feature level of those devices, which on a device equals the runtime's: 31 for Android 12 and 12L,
    1000006, 1000007, 1000008 for Android 13, 14, 15 (NeuralNetworksTypes.h, ANEURALNETWORKS_FEATURE_LEVEL_*).
    So on API 33 an op that needs feature level 6 is taken only when devices are targeted."""
    targets = accelerator is not None or disallow_nnapi_cpu
    if android_api >= 29 and targets:
        return rules.runtime_feature_level(android_api)
    return android_api


@lru_cache(maxsize=4)
def load_rules(path: Optional[str] = None) -> RuleSet:
    p = Path(path) if path else RULES_PATH
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read rule table {p}: {exc}") from None
    types = {k: tuple(v) for k, v in raw.get("types", {}).items()}
    ops: Dict[str, Tuple[Mapping[str, Any], ...]] = {}
    for name, entry in raw.get("ops", {}).items():
        checks = []
        for i, check in enumerate(entry.get("checks", [])):
            unknown = set(check) - _CONDITIONS - _MODIFIERS - _REQUIREMENTS
            if unknown:
                raise UsageError(f"rule table {p}: ops.{name} check {i}: unknown keys {sorted(unknown)}")
            if not set(check) & _REQUIREMENTS:
                raise UsageError(f"rule table {p}: ops.{name} check {i}: requires nothing")
            for key in ("input_type", "output_type", "output_type_not", "if_input_type", "if_input_type_not"):
                if isinstance(check.get(key), str):
                    if check[key] not in types:
                        raise UsageError(f"rule table {p}: ops.{name}: unknown type group {check[key]!r}")
                    check = {**check, key: list(types[check[key]])}
            checks.append(check)
        ops[name] = tuple(checks)
    releases = {
        k: Release(k, v["era"], v["pool_check"], v["accelerator"], bool(v["max_partitions"]))
        for k, v in raw.get("releases", {}).items()
    }
    pool_checks = {
        k: PoolCheck(
            k,
            v["where"],
            bool(v["quantized_only"]),
            bool(v["accelerator_escape"]),
            int(v["max_area"]),
            v["reason"],
            int(v["patched_max_area"]),
        )
        for k, v in raw.get("pool_checks", {}).items()
    }
    for r in releases.values():
        if r.pool_check not in pool_checks or r.era not in raw.get("eras", {}):
            raise UsageError(f"rule table {p}: release {r.version}: unknown pool check or era")
    nm = raw.get("not_modelled", {})
    return RuleSet(
        ops,
        releases,
        pool_checks,
        types,
        tuple(nm.get("ops", ())),
        nm.get("reason", "not modelled"),
        raw.get("unknown", {}).get("reason", "Unsupported operation type."),
        {int(k): int(v) for k, v in raw.get("feature_levels", {}).items()},
        tuple((tuple(c["ops"]), int(c["absent_input"]), c["reason"]) for c in raw.get("crash", ())),
    )


# ---------------------------------------------------------------------------------------------------------
# Evaluation


class _Node:
    """One operator with its tensors, as Validate() sees it."""

    __slots__ = ("model", "op")

    def __init__(self, model: TFLiteModel, op: OperatorInfo) -> None:
        self.model = model
        self.op = op

    def input(self, i: int) -> Optional[TensorInfo]:
        if 0 <= i < len(self.op.inputs):
            return self.model.tensor(self.op.inputs[i])
        return None

    def output(self, i: int) -> Optional[TensorInfo]:
        if 0 <= i < len(self.op.outputs):
            return self.model.tensor(self.op.outputs[i])
        return None

    def ref(self, name: str) -> Optional[TensorInfo]:
        if name.startswith("input"):
            return self.input(int(name[5:] or 0))
        if name.startswith("output"):
            return self.output(int(name[6:] or 0))
        raise UsageError(f"rule table: bad tensor reference {name!r}")

    def option(self, key: str, like: Any = None) -> Any:
        opts = self.op.options
        if key in opts:
            return opts[key]
        # Absent options table: TFLite zero-initialises the params struct.
        if isinstance(like, bool):
            return False
        if isinstance(like, int):
            return 0
        if key == "fused_activation_function":
            return "NONE"
        return None


def _type(t: Optional[TensorInfo]) -> Optional[str]:
    return t.type if t is not None else None


def _applies(check: Mapping[str, Any], node: _Node, ctx: Context) -> bool:
    api = ctx.level
    if "api_min" in check and api < check["api_min"]:
        return False
    if "api_max" in check and api > check["api_max"]:
        return False
    rel = version_key(ctx.release.version)
    if "tf_min" in check and rel < version_key(check["tf_min"]):
        return False
    if "tf_max" in check and rel > version_key(check["tf_max"]):
        return False
    if "era" in check and ctx.release.era not in check["era"]:
        return False
    idx = check.get("if_input", 0)
    if "if_input_type" in check and _type(node.input(idx)) not in check["if_input_type"]:
        return False
    if "if_input_type_not" in check and _type(node.input(idx)) in check["if_input_type_not"]:
        return False
    if "if_option_eq" in check:
        if any(node.option(k, v) != v for k, v in check["if_option_eq"].items()):
            return False
    if "if_option_ne" in check:
        if all(node.option(k, v) == v for k, v in check["if_option_ne"].items()):
            return False
    if "if_num_inputs" in check and len(node.op.inputs) != check["if_num_inputs"]:
        return False
    if "if_num_inputs_min" in check and len(node.op.inputs) < check["if_num_inputs_min"]:
        return False
    if "if_accelerator" in check and ctx.is_accelerator_specified != check["if_accelerator"]:
        return False
    if "if_rank0" in check:
        t = node.input(check["if_rank0"])
        if t is None or t.rank != 0:
            return False
    if "if_not_const_input" in check:
        t = node.input(check["if_not_const_input"])
        if t is None or t.is_constant:
            return False
    return True


def _as_list(v: Any) -> List[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _quant(t: Optional[TensorInfo]) -> Tuple[float, int]:
    if t is None:
        return (0.0, 0)
    return (t.scale or 0.0, t.zero_point or 0)


def _check(check: Mapping[str, Any], node: _Node, ctx: Context, rules: RuleSet) -> Optional[str]:
    """None when the requirement holds, else the failure reason."""
    op = node.op
    reason = check.get("reason")
    if "max_version" in check and op.version > check["max_version"]:
        return reason or f"OP Version higher than {check['max_version']}"
    if "op_version" in check and op.version > check["op_version"]:
        return reason or f"OP Version different from {check['op_version']}"
    if "op_version_in" in check and op.version not in check["op_version_in"]:
        return reason
    if "min_api" in check and ctx.level < check["min_api"]:
        return reason or f"Android sdk version less than {check['min_api']}"
    if "num_inputs" in check and len(op.inputs) != check["num_inputs"]:
        return reason
    if "num_inputs_min" in check and len(op.inputs) < check["num_inputs_min"]:
        return reason
    if "bias_present" in check and not (len(op.inputs) == 3 and op.inputs[2] != -1):
        return reason
    if "input_type" in check and _type(node.input(check.get("input", 0))) not in check["input_type"]:
        return reason
    if "output_type" in check and _type(node.output(check.get("output", 0))) not in check["output_type"]:
        return reason
    if "output_type_not" in check and _type(node.output(check.get("output", 0))) in check["output_type_not"]:
        return reason
    if "option_eq" in check:
        if any(node.option(k, v) != v for k, v in check["option_eq"].items()):
            return reason
    if "option_in" in check:
        if any(node.option(k) not in vals for k, vals in check["option_in"].items()):
            return reason
    if "option_nonempty" in check:
        key = check["option_nonempty"]
        val = list(node.option(key) or [])
        if key == "new_shape" and val == [0]:
            val = []  # legacy models use [0] for a scalar
        if not val:
            return reason
    if "const_input" in check:
        for i in _as_list(check["const_input"]):
            t = node.input(i)
            if t is None or not t.is_constant:
                return reason
    rank_keys = ("rank_max", "rank_eq", "rank_min", "rank_in")
    if any(k in check for k in rank_keys):
        t = node.ref(check.get("rank_of", "input0"))
        if t is None:
            return reason
        r = t.rank
        if (
            ("rank_max" in check and r > check["rank_max"])
            or ("rank_eq" in check and r != check["rank_eq"])
            or ("rank_min" in check and r < check["rank_min"])
            or ("rank_in" in check and r not in check["rank_in"])
        ):
            return reason
    if "same_quant" in check:
        a, b = (node.ref(x) for x in check["same_quant"])
        if _quant(a) != _quant(b):
            return reason
    if "inputs_same_quant" in check:
        first = _quant(node.input(0))
        if any(_quant(node.input(i)) != first for i in range(1, len(op.inputs))):
            return reason
    if "pool_area" in check:
        failure = _pool_area(check, node, ctx, rules)
        if failure:
            return failure
    if "not_hybrid" in check:
        if _type(node.input(0)) == "FLOAT32" and _type(node.input(1)) in _QUANTIZED:
            return reason
    if "restricted_scales" in check:
        s_in, s_f, s_out = (_quant(node.input(0))[0], _quant(node.input(1))[0], _quant(node.output(0))[0])
        if not s_in * s_f < s_out:
            return reason
    if "per_tensor_filter" in check:
        f = node.input(1)
        if f is not None and f.num_scales > 1:
            return reason
    if "output_hw_equal" in check:
        t = node.output(0)
        if t is None or t.rank < 3 or t.shape[1] != t.shape[2]:
            return reason
    if "no_zero_dims" in check:
        t = node.input(check["no_zero_dims"])
        if t is None or 0 in t.shape:
            return reason
    if "scale_positive" in check:
        if not _quant(node.ref(check["scale_positive"]))[0] > 0:
            return reason
    if "zero_point_zero" in check:
        if _quant(node.ref(check["zero_point_zero"]))[1] != 0:
            return reason
    if "const_equals" in check:
        i = check.get("input", 0)
        t = node.input(i)
        values = node.model.constant_values(op.inputs[i]) if t is not None else None
        if values is None or [int(v) for v in values] != list(check["const_equals"]):
            return reason
    if "same_shape" in check:
        a, b = (node.input(i) for i in check["same_shape"])
        if a is None or b is None or a.shape != b.shape:
            return reason
    if "pack_axis_not_last" in check:
        axis = node.option("axis", 0)
        t = node.input(0)
        if axis == -1 or (t is not None and axis == t.rank):
            return reason
    return None


def _pool_area(check: Mapping[str, Any], node: _Node, ctx: Context, rules: RuleSet) -> Optional[str]:
    shape = rules.pool_checks[ctx.release.pool_check]
    max_area = shape.patched_max_area if check.get("patch") in ctx.removed_checks else shape.max_area
    if shape.quantized_only and _type(node.input(0)) not in _QUANTIZED:
        return None
    if shape.accelerator_escape and ctx.is_accelerator_specified:
        return None
    fw = node.option("filter_width", 0) or 0
    fh = node.option("filter_height", 0) or 0
    area = int(fw) * int(fh)
    if area <= max_area:
        return None
    return f"{shape.reason} (filter {fw}x{fh} = {area} > {max_area})"


def validate(rules: RuleSet, model: TFLiteModel, op: OperatorInfo, ctx: Context) -> List[str]:
    """Every reason the delegate refuses this op for; an empty list means the op is supported."""
    if op.op_type in rules.not_modelled:
        return [rules.not_modelled_reason]
    checks = rules.ops.get(op.op_type)
    if checks is None:
        what = f"custom op {op.custom_code!r}" if op.op_type == "CUSTOM" else op.op_type
        return [f"{rules.unknown_reason} ({what} is not in the delegate's op list)"]
    node = _Node(model, op)
    reasons: List[str] = []
    for check in checks:
        if check.get("patch") in ctx.removed_checks and "pool_area" not in check:
            continue
        if not _applies(check, node, ctx):
            continue
        if check.get("accept"):
            return []
        failure = _check(check, node, ctx, rules)
        if failure and failure not in reasons:
            reasons.append(failure)
    return reasons


def known_ops(rules: Optional[RuleSet] = None) -> Sequence[str]:
    return sorted((rules or load_rules()).ops)
