"""Golden data of the real delegate (tests/probe/golden/*.jsonl.gz) and the differences between it and the
predictor that are understood (tests/probe/golden/known_differences.toml): each names the models and trees
it covers and says, from the delegate's code, why the predictor does not follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from deeplab_nnapi.probe.differential import Corpus, Difference
from deeplab_nnapi.probe.modelgen import generate_specs

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
KNOWN = GOLDEN_DIR / "known_differences.toml"


def load_known(path: Path = KNOWN) -> List[Dict[str, Any]]:
    if not path.is_file():
        return []
    return tomllib.loads(path.read_text(encoding="utf-8")).get("difference", [])


_PARAMS: Dict[str, Dict[str, Any]] = {}


def _params(key: str) -> Optional[Dict[str, Any]]:
    if not _PARAMS:
        for s in generate_specs():
            _PARAMS[s.key] = {"family": s.family, **s.p}
    return _PARAMS.get(key)


def explain(known: List[Dict[str, Any]], tree: str, corpus: Corpus, d: Difference) -> Optional[str]:
    """The id of the known difference that covers ``d``, or None."""
    params = _params(d.key) or {"family": d.key.split(":")[0]}
    for k in known:
        if tree not in k.get("trees", [tree]):
            continue
        if k.get("family") and params.get("family") != k["family"]:
            continue
        if any(params.get(p) != v for p, v in k.get("params", {}).items()):
            continue
        if "real_status" in k and d.real.get("status") != k["real_status"]:
            continue
        return k["id"]
    return None
