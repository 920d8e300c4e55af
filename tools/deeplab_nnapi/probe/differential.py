"""The predictor against the real delegate, over a corpus of models, API levels, delegates and options.

Public API::

    from deeplab_nnapi.probe.differential import CASES, Corpus, answer_of, compare_answers, golden_io
    corpus = Corpus.build(seed=1, reference_dir=Path("../shared/reference/models"))
    real = real_answers(RealDelegate(tree, "stock"), corpus, cases)        # {(model, case): answer}
    predicted = predicted_answers(corpus, cases, release="2.9")
    compare_answers(predicted, real)                                       # the differences

An *answer* is plain data, the same whoever gave it: the execution plan (node kinds and their ops) and the
reason for every refused op, or the status when there is no plan. The real delegate's answers are kept
as golden data (one JSON-lines file per tree, identical answers of a model grouped), so a machine with no
C++ source and no compiler holds the predictor to them: the corpus is rebuilt from its seed.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from deeplab_nnapi.nnapi.delegation import DELEGATE_NODE_TYPE, DelegateOptions, DelegationPlan, plan_model
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, format_ranges, load_model
from deeplab_nnapi.probe.crosscheck import reasons
from deeplab_nnapi.probe.modelgen import build_model, generate_specs

APIS = tuple(range(27, 34))
DELEGATES = ("stock", "patched")


@dataclass(frozen=True)
class OptionSet:
    name: str
    accelerator: Optional[str] = None
    max_partitions: int = 3
    families: Optional[Tuple[str, ...]] = None  # None: every model

    def applies(self, family: str) -> bool:
        return self.families is None or family in self.families


OPTION_SETS = (
    OptionSet("default"),
    OptionSet("accelerator", accelerator="probe-accelerator"),
    OptionSet("one-partition", max_partitions=1, families=("chain", "reference", "google", "fixed")),
)


@dataclass(frozen=True)
class Case:
    delegate: str
    option: OptionSet
    api: int

    @property
    def label(self) -> str:
        return f"{self.delegate}/{self.option.name}/{self.api}"

    def options(self, release: Optional[str] = None) -> DelegateOptions:
        return DelegateOptions(
            android_api=self.api,
            delegate=self.delegate,
            tf_version=release,
            accelerator=self.option.accelerator,
            max_partitions=self.option.max_partitions,
        )


def all_cases(
    apis: Sequence[int] = APIS,
    delegates: Sequence[str] = DELEGATES,
    option_sets: Sequence[OptionSet] = OPTION_SETS,
) -> List[Case]:
    return [Case(d, o, a) for d in delegates for o in option_sets for a in apis]


@dataclass
class Entry:
    key: str
    family: str
    describe: str
    data: bytes
    model: Optional[TFLiteModel] = None

    def parsed(self) -> TFLiteModel:
        if self.model is None:
            self.model = load_model(self.data, self.key)
        return self.model


@dataclass
class Corpus:
    entries: List[Entry] = field(default_factory=list)

    @classmethod
    def build(cls, seed: int = 1, scale: float = 1.0, extra: Sequence[Entry] = ()) -> Corpus:
        """The generated models, then ``extra`` entries (the published models and their forms, which the
        tests and the benchmark add from the reference material)."""
        c = cls()
        for s in generate_specs(seed, scale):
            c.entries.append(Entry(s.key, s.family, s.describe(), build_model(s)))
        c.entries += list(extra)
        return c

    def by_key(self) -> Dict[str, Entry]:
        return {e.key: e for e in self.entries}


# ---- answers ---------------------------------------------------------------------------------------------



def answer_of(result: Any) -> Dict[str, Any]:
    """The comparable answer of a DelegationPlan or a ProbeFailure."""
    if not isinstance(result, DelegationPlan) or result.status != "ok":
        return {"status": result.status}
    nodes = " ".join(
        ("NNAPI" if n.type == DELEGATE_NODE_TYPE else n.type) + ":" + format_ranges(n.ops)
        for n in result.nodes
    )
    refused = {str(r.op): "; ".join(reasons(r.reason)) for r in result.refused}
    return {"nodes": nodes, "refused": refused}


def predicted_answers(
    corpus: Corpus, cases: Sequence[Case], release: Optional[str]
) -> Dict[Tuple[str, str], Dict[str, Any]]:
    out = {}
    for e in corpus.entries:
        m = e.parsed()
        for c in cases:
            if c.option.applies(e.family):
                out[(e.key, c.label)] = answer_of(plan_model(m, c.options(release)))
    return out


def real_answers(
    engines: Dict[str, Any],
    corpus: Corpus,
    cases: Sequence[Case],
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """``engines``: delegate name -> RealDelegate. Runs the probe once per delegate and option set."""
    out = {}
    for delegate, engine in engines.items():
        for option in {c.option for c in cases if c.delegate == delegate}:
            chosen = [c for c in cases if c.delegate == delegate and c.option == option]
            entries = [e for e in corpus.entries if option.applies(e.family)]
            if progress:
                progress(f"{delegate}/{option.name}: {len(entries)} models x {len(chosen)} API levels")
            results = engine.plans([e.parsed() for e in entries], [c.options() for c in chosen])
            k = 0
            for e in entries:
                for c in chosen:
                    out[(e.key, c.label)] = answer_of(results[k])
                    k += 1
    return out


@dataclass
class Difference:
    key: str
    case: str
    predicted: Dict[str, Any]
    real: Dict[str, Any]


def compare_answers(
    predicted: Dict[Tuple[str, str], Dict[str, Any]], real: Dict[Tuple[str, str], Dict[str, Any]]
) -> List[Difference]:
    diffs = []
    for k in sorted(set(predicted) | set(real)):
        p, r = predicted.get(k), real.get(k)
        if p != r:
            diffs.append(Difference(k[0], k[1], p or {}, r or {}))
    return diffs


# ---- golden data ------------------------------------------------------------------------------------------


def _compress_cases(labels: Iterable[str]) -> str:
    """'stock/default/27', 'stock/default/28', ... -> 'stock/default/27-28'."""
    groups: Dict[str, List[int]] = {}
    for label in labels:
        head, api = label.rsplit("/", 1)
        groups.setdefault(head, []).append(int(api))
    parts = []
    for head in sorted(groups):
        parts.append(f"{head}/{format_ranges(sorted(groups[head])).replace(' + ', ',')}")
    return " ".join(parts)


def expand_cases(text: str) -> List[str]:
    out = []
    for part in text.split():
        head, apis = part.rsplit("/", 1)
        for chunk in apis.split(","):
            lo, _, hi = chunk.partition("-")
            for api in range(int(lo), int(hi or lo) + 1):
                out.append(f"{head}/{api}")
    return out


def write_golden(
    path: Path, header: Dict[str, Any], corpus: Corpus, real: Dict[Tuple[str, str], Dict[str, Any]]
) -> None:
    """One JSON line for the header, then one per model: its distinct answers with the cases giving each."""
    lines = [json.dumps(header, sort_keys=True)]
    for e in corpus.entries:
        groups: Dict[str, List[str]] = {}
        for (key, label), ans in real.items():
            if key == e.key:
                groups.setdefault(json.dumps(ans, sort_keys=True), []).append(label)
        if not groups:
            continue
        answers = [
            {"cases": _compress_cases(labels), "answer": json.loads(a)}
            for a, labels in sorted(groups.items(), key=lambda kv: sorted(kv[1])[0])
        ]
        lines.append(json.dumps({"model": e.key, "spec": e.describe, "answers": answers}, sort_keys=True))
    text = ("\n".join(lines) + "\n").encode()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(text)


def read_golden(path: Path) -> Tuple[Dict[str, Any], Dict[Tuple[str, str], Dict[str, Any]]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        lines = f.read().decode().splitlines()
    header = json.loads(lines[0])
    answers = {}
    for line in lines[1:]:
        d = json.loads(line)
        for a in d["answers"]:
            for label in expand_cases(a["cases"]):
                answers[(d["model"], label)] = a["answer"]
    return header, answers


def cases_of(labels: Iterable[str]) -> List[Case]:
    """The Case objects for golden labels (option sets by name)."""
    by_name = {o.name: o for o in OPTION_SETS}
    out = {}
    for label in labels:
        d, o, a = label.split("/")
        out[label] = Case(d, by_name[o], int(a))
    return list(out.values())
