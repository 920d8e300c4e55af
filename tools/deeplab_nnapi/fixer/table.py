"""The fixer's rule table (``data/fix_rules.toml``): which refusals a rewrite answers, and version facts."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from deeplab_nnapi.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "fix_rules.toml"

_RULE_KEYS = {"rewrite", "reasons", "max_version", "types", "what"}


@dataclass(frozen=True)
class Rule:
    op_type: str
    rewrite: str
    reasons: Tuple[str, ...]
    max_version: int
    types: Tuple[str, ...]
    what: str

    def answers(self, reason: str) -> bool:
        return any(r in reason for r in self.reasons)


@dataclass(frozen=True)
class FixTable:
    rules: Mapping[str, Rule]
    new_op_versions: Mapping[str, Mapping[str, int]]
    runtime_versions: Mapping[str, str]

    def runtime_version(self, op_type: str, version: int) -> Optional[str]:
        return self.runtime_versions.get(f"{op_type}/{version}")


def version_tuple(text: str) -> Tuple[int, ...]:
    out = []
    for part in text.strip().split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


@lru_cache(maxsize=2)
def load_fix_table(path: Optional[str] = None, rewrites: Sequence[str] = ()) -> FixTable:
    p = Path(path) if path else TABLE_PATH
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read rule table {p}: {exc}") from None
    rules: Dict[str, Rule] = {}
    for op_type, entry in raw.get("rules", {}).items():
        unknown = set(entry) - _RULE_KEYS
        if unknown or not _RULE_KEYS <= set(entry):
            raise UsageError(f"rule table {p}: rules.{op_type}: keys must be {sorted(_RULE_KEYS)}")
        if rewrites and entry["rewrite"] not in rewrites:
            raise UsageError(f"rule table {p}: rules.{op_type}: unknown rewrite {entry['rewrite']!r}")
        rules[op_type] = Rule(op_type, entry["rewrite"], tuple(entry["reasons"]), int(entry["max_version"]),
                              tuple(entry["types"]), entry["what"])
    versions = {k: {t: int(v) for t, v in d.items()} for k, d in raw.get("new_op_versions", {}).items()}
    return FixTable(rules, versions, dict(raw.get("runtime_versions", {})))
