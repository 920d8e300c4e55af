"""Run a built probe over models and API levels, and turn its answers into delegation plans.

Public API::

    from deeplab_nnapi.probe.run import ProbeSettings, run_binary, to_result
    cases = run_binary(binary, [Path("m.tflite")], [29, 30], ProbeSettings())   # one dict per (model, api)
    result = to_result(cases[0], model, options, source)   # DelegationPlan, or ProbeFailure

One probe process takes many models and levels (a case costs a few milliseconds; a process start costs
more). A case that kills the probe (a crash in the delegate on a strange model) or hangs is reported as
such, and the cases after it run in fresh processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from deeplab_nnapi.nnapi.delegation import (
    DELEGATE_NODE_TYPE,
    DelegateOptions,
    DelegationPlan,
    Node,
    Refusal,
)
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, format_ranges

#: Cases per probe process (keeps the command line short).
CHUNK = 200
#: Seconds a process may take: a base plus a share per case.
TIMEOUT_BASE, TIMEOUT_PER_CASE = 30.0, 2.0


@dataclass(frozen=True)
class ProbeSettings:
    accelerator: Optional[str] = None
    disallow_nnapi_cpu: bool = False
    max_partitions: int = 3

    def args(self) -> List[str]:
        out = ["--max-partitions", str(self.max_partitions)]
        if self.accelerator:
            out += ["--accelerator", self.accelerator]
        if self.disallow_nnapi_cpu:
            out.append("--disallow-nnapi-cpu")
        return out

    @classmethod
    def of(cls, options: DelegateOptions) -> ProbeSettings:
        return cls(options.accelerator or None, options.disallow_nnapi_cpu, options.max_partitions)


def _failure_case(model: str, api: int, status: str, message: str) -> Dict[str, Any]:
    return {"model": model, "android_api": api, "status": status, "messages": [message]}


def _run_once(
    binary: Path, cases: Sequence[Tuple[str, int]], settings: ProbeSettings
) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """Run cases that share one model list and API list. Returns the answers read and, if the process did
    not finish normally, why."""
    models = list(dict.fromkeys(m for m, _ in cases))
    apis = list(dict.fromkeys(a for _, a in cases))
    # "--" ends the options, so a model path may start with a dash.
    cmd = [str(binary), "--android-api", ",".join(map(str, apis)), *settings.args(), "--", *models]
    timeout = TIMEOUT_BASE + TIMEOUT_PER_CASE * len(cases)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=dict(os.environ, LC_ALL="C"))
        out, code = proc.stdout, proc.returncode
        err = proc.stderr.decode("utf-8", "replace").strip()
    except subprocess.TimeoutExpired as exc:
        out, code, err = exc.stdout or b"", None, f"no answer within {timeout:.0f} s"
    answers = []
    for line in out.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            answers.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a crash
    if code == 0 and len(answers) == len(models) * len(apis):
        return answers, None
    if code is None:
        return answers, err
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return answers, f"the probe died of {name} in the delegate"
    return answers, err.splitlines()[-1] if err else f"the probe exited with status {code}"


def run_binary(
    binary: Path, models: Sequence[Path], apis: Sequence[int], settings: ProbeSettings, chunk: int = CHUNK
) -> List[Dict[str, Any]]:
    """One answer per (model, api), models outer, in order. Never raises for what a model does to the
    probe: such a case has ``status`` "crash" or "timeout", and the run goes on after it."""
    apis = list(apis)
    per = max(1, chunk // max(1, len(apis)))
    results: List[Dict[str, Any]] = []
    for start in range(0, len(models), per):
        results.extend(_run_models([str(m) for m in models[start : start + per]], apis, settings, binary))
    assert len(results) == len(models) * len(apis)
    return results


def _run_models(
    models: List[str], apis: List[int], settings: ProbeSettings, binary: Path
) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    while models:
        cases = [(m, a) for m in models for a in apis]
        answers, problem = _run_once(binary, cases, settings)
        out.extend(answers)
        if problem is None:
            return out
        # The case after the last answer broke the probe: mark it, finish that model's other levels one
        # process each, then go on with the models after it in one process again.
        broken = len(answers)
        model = cases[broken][0]
        status = "timeout" if problem.startswith("no answer") else "crash"
        out.append(_failure_case(model, cases[broken][1], status, problem))
        for m, a in cases[broken + 1 :]:
            if m != model:
                break
            one, why = _run_once(binary, [(m, a)], settings)
            if why is None and len(one) == 1:
                out.append(one[0])
            else:
                kind = "timeout" if why and why.startswith("no answer") else "crash"
                out.append(_failure_case(m, a, kind, why or "no answer"))
        models = models[models.index(model) + 1 :]
    return out


@dataclass
class ProbeFailure:
    """A case the real delegate gave no plan for: it could not prepare the model (``delegate_error``), the
    model could not be built (``model_error``), or the probe crashed or hung in the delegate."""

    model: str
    options: DelegateOptions
    status: str
    messages: List[str] = field(default_factory=list)
    source: Optional[Dict[str, Any]] = None
    engine: str = "probe"

    single_partition = False
    nodes: Tuple = ()
    delegate_nodes: Tuple = ()

    @property
    def message(self) -> str:
        useful = [m for m in self.messages if "Created TensorFlow Lite delegate" not in m]
        return useful[-1] if useful else self.status

    def to_json(self) -> Dict[str, Any]:
        return {
            "model": self.model,
            "engine": self.engine,
            "status": self.status,
            "single_partition": False,
            "message": self.message,
            "messages": list(self.messages),
            "options": {
                "android_api": self.options.android_api,
                "delegate": self.options.delegate,
                "accelerator": self.options.accelerator,
                "disallow_nnapi_cpu": self.options.disallow_nnapi_cpu,
                "max_partitions": self.options.max_partitions,
            },
            "source": self.source,
        }


def _name(model: TFLiteModel, outputs: Sequence[int]) -> str:
    names = [model.tensors[t].name for t in outputs if 0 <= t < len(model.tensors)]
    return "[" + ", ".join(names) + "]"


def _attribute_by_order(model: TFLiteModel, refused: List[Dict[str, Any]], delegated: set) -> List[Refusal]:
    """Trees without the vendor-plugin hook log refusals in node order without the node: give each line to
    the next op of its type that is not delegated."""
    out: List[Refusal] = []
    cursor = 0
    for r in refused:
        for i in range(cursor, len(model.operators)):
            op = model.operators[i]
            if i not in delegated and op.op_type == r["op_type"]:
                out.append(Refusal(i, op.op_type, r["reason"]))
                cursor = i
                break
        else:
            out.append(Refusal(-1, r["op_type"], r["reason"]))
    return out


def to_result(
    case: Dict[str, Any],
    model: TFLiteModel,
    options: DelegateOptions,
    source: Optional[Dict[str, Any]] = None,
):
    """A DelegationPlan (engine "probe") from one answer of the probe, or a ProbeFailure."""
    status = case.get("status")
    if status != "ok":
        messages = list(case.get("messages", []))
        return ProbeFailure(model.source, options, status or "unknown", messages, source)
    nodes: List[Node] = []
    delegated = set()
    for n in case["nodes"]:
        nodes.append(Node(n["type"], list(n["ops"]), n["index"], _name(model, n.get("outputs", []))))
        if n["type"] == DELEGATE_NODE_TYPE:
            delegated.update(n["ops"])
    # One reason per refused op, joined as the predictor joins them.
    by_op: Dict[int, List[str]] = {}
    types: Dict[int, str] = {}
    if case.get("hook", True):
        refusals = [Refusal(r["op"], r["op_type"], r["reason"]) for r in case.get("refused", [])]
    else:
        refusals = _attribute_by_order(model, case.get("refused", []), delegated)
    for r in refusals:
        by_op.setdefault(r.op, []).append(r.reason)
        types[r.op] = r.op_type
    refused = [Refusal(op, types[op], "; ".join(reasons)) for op, reasons in sorted(by_op.items())]
    plan = DelegationPlan(
        nodes, refused, model.source, len(model.operators), options, (source or {}).get("version") or "", None
    )
    plan.engine = "probe"
    plan.source = source
    plan.messages = [m for m in case.get("messages", []) if m]
    refused_ops = {r.op for r in refused}
    plan.not_delegated = [
        i for i in range(len(model.operators)) if i not in delegated and i not in refused_ops
    ]
    if plan.not_delegated and delegated:
        plan.notes.append(
            f"ops {format_ranges(plan.not_delegated)} are not refused but run on CPU "
            "(max_number_delegated_partitions, or no accelerator for them)"
        )
    if not case.get("hook", True):
        plan.notes.append(
            "this tree's delegate has no vendor-plugin hook: refusals are matched to ops by order"
        )
    return plan
