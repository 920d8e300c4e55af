"""Which files of a TensorFlow or LiteRT tree the probe compiles: the include closure of the recipe's seeds.

Public API::

    from deeplab_nnapi.probe.sources import find_lite_tree, collect_sources, load_recipe
    tree = find_lite_tree(Path("~/src/LiteRT"))          # ProbeTree(root, lite="tflite")
    sources = collect_sources(tree)                          # SourceSet: .cc files, headers, includes
    sources.sources, sources.generated, sources.external, sources.closure_of("tflite/util.cc")

The list is never written by hand: starting from the seeds (the delegate, the interpreter builder, the op
resolver, the probe's own headers) every quoted ``#include`` that names a file of the tree is followed, and
the ``.cc``/``.c`` beside each header reached is compiled. Every release keeps its files elsewhere
(``tensorflow/lite/interpreter_builder.cc`` in 2.9, ``tflite/core/interpreter_builder.cc`` in LiteRT); the
closure finds them without a table per release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from deeplab_nnapi.errors import UsageError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

#: ``#include "path"`` at the start of a line (the tree's own headers are always quoted).
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)

Alternatives = Union[str, Sequence[str]]


@dataclass(frozen=True)
class Provider:
    prefix: str
    install: str = ""
    shim: bool = False


@dataclass(frozen=True)
class Recipe:
    lite_roots: Tuple[str, ...]
    seeds: Tuple[Alternatives, ...]
    probe_headers: Tuple[Alternatives, ...]
    exclude: Tuple[str, ...]
    cxx_std: str
    c_std: str
    opt: str
    defines: Tuple[str, ...]
    system_includes: Tuple[str, ...]
    libs: Tuple[str, ...]
    absl_pkgconfig_prefix: str
    flatc_args: Tuple[str, ...]
    providers: Tuple[Provider, ...]
    schema_fixups: Tuple[Tuple[str, str], ...] = ()

    def provider(self, include: str) -> Optional[Provider]:
        for p in self.providers:
            if include.startswith(p.prefix):
                return p
        return None

    def fix_schema(self, text: str) -> str:
        """A .fbs text with the annotations flatc cannot parse removed (``schema_fixup``)."""
        for pattern, replace in self.schema_fixups:
            text = re.sub(pattern, replace, text, flags=re.M)
        return text


@cache
def load_recipe() -> Recipe:
    text = resources.files("deeplab_nnapi").joinpath("data/probe_build.toml").read_text(encoding="utf-8")
    d = tomllib.loads(text)
    if d.get("schema") != 1:
        raise ValueError("probe_build.toml: unknown schema")
    return Recipe(
        lite_roots=tuple(d["lite_roots"]),
        seeds=tuple(tuple(s) if isinstance(s, list) else s for s in d["seeds"]),
        probe_headers=tuple(tuple(s) if isinstance(s, list) else s for s in d["probe_headers"]),
        exclude=tuple(d.get("exclude", ())),
        cxx_std=d["cxx_std"],
        c_std=d["c_std"],
        opt=d["opt"],
        defines=tuple(d.get("defines", ())),
        system_includes=tuple(d.get("system_includes", ())),
        libs=tuple(d.get("libs", ())),
        absl_pkgconfig_prefix=d["absl_pkgconfig_prefix"],
        flatc_args=tuple(d["flatc_args"]),
        providers=tuple(Provider(**p) for p in d.get("provider", ())),
        schema_fixups=tuple((f["pattern"], f["replace"]) for f in d.get("schema_fixup", ())),
    )


@dataclass(frozen=True)
class ProbeTree:
    root: Path
    lite: str  # tree-relative directory of TFLite: "tensorflow/lite" or "tflite"

    @property
    def delegate(self) -> str:
        return f"{self.lite}/delegates/nnapi/nnapi_delegate.cc"

    @property
    def kind(self) -> str:
        return "litert" if self.lite == "tflite" else "tensorflow"


def find_lite_tree(root: Union[str, Path], recipe: Optional[Recipe] = None) -> ProbeTree:
    """The TFLite directory of a TensorFlow (>= 2.2) or LiteRT tree. Raises UsageError (one line)."""
    recipe = recipe or load_recipe()
    root = Path(root)
    if not root.exists():
        raise UsageError(f"{root}: no such directory")
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory (give the top of a TensorFlow or LiteRT tree)")
    for lite in recipe.lite_roots:
        if (root / lite / "delegates/nnapi/nnapi_delegate.cc").is_file():
            return ProbeTree(root.resolve(), lite)
    looked = " and ".join(f"{lite}/delegates/nnapi/nnapi_delegate.cc" for lite in recipe.lite_roots)
    raise UsageError(
        f"{root}: no NNAPI delegate here (looked for {looked}); is this the top of a "
        "TensorFlow or LiteRT tree?"
    )


def _pick(tree: ProbeTree, alternatives: Alternatives, required: bool = True) -> Optional[str]:
    options = [alternatives] if isinstance(alternatives, str) else list(alternatives)
    for rel in options:
        path = f"{tree.lite}/{rel}"
        if (tree.root / path).is_file():
            return path
    if required and isinstance(alternatives, str):
        raise UsageError(
            f"{tree.root}: {tree.lite}/{alternatives} is missing; the probe cannot be built from this tree"
        )
    return None


@dataclass
class SourceSet:
    tree: ProbeTree
    sources: List[str] = field(default_factory=list)  # tree-relative .cc/.c, sorted
    headers: List[str] = field(default_factory=list)  # tree-relative headers reached, sorted
    #: headers generated by flatc that are rebuilt from their schema: (header, schema), tree-relative
    generated: List[Tuple[str, str]] = field(default_factory=list)
    external: List[str] = field(default_factory=list)  # quoted includes the tree does not hold, sorted
    probe_headers: List[str] = field(default_factory=list)  # what probe_tflite.h includes
    includes: Dict[str, List[str]] = field(default_factory=dict)  # file -> the tree files it includes

    def closure_of(self, start: str) -> List[str]:
        """Every tree file ``start`` reaches through includes (itself first), in a stable order."""
        out, seen, todo = [], set(), [start]
        while todo:
            f = todo.pop()
            if f in seen:
                continue
            seen.add(f)
            out.append(f)
            todo.extend(reversed(self.includes.get(f, [])))
        return [out[0]] + sorted(out[1:])


def _includes(root: Path, rel: str) -> List[str]:
    try:
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"{root / rel}: cannot read ({exc.strerror or exc})") from None
    return INCLUDE.findall(text)


def collect_sources(tree: ProbeTree, recipe: Optional[Recipe] = None) -> SourceSet:
    """The include closure of the recipe's seeds in ``tree``."""
    recipe = recipe or load_recipe()
    root = tree.root
    excluded = {f"{tree.lite}/{e}" for e in recipe.exclude}
    result = SourceSet(tree)
    result.probe_headers = [p for p in (_pick(tree, h) for h in recipe.probe_headers) if p]
    todo: List[str] = [p for p in (_pick(tree, s) for s in recipe.seeds) if p] + list(result.probe_headers)
    seen: Set[str] = set()
    external: Set[str] = set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        found: List[str] = []
        for inc in _includes(root, rel):
            if (root / inc).is_file():
                found.append(inc)
            else:
                external.add(inc)
        result.includes[rel] = found
        todo.extend(found)
        stem, dot, ext = rel.rpartition(".")
        if dot and ext in ("h", "hpp"):  # a header reached: the source beside it is compiled
            for src_ext in ("cc", "c"):
                src = f"{stem}.{src_ext}"
                if src not in excluded and (root / src).is_file():
                    todo.append(src)
    result.sources = sorted(f for f in seen if f.endswith((".cc", ".c")) and f not in excluded)
    result.headers = sorted(f for f in seen if not f.endswith((".cc", ".c")))
    for h in result.headers:
        if h.endswith("_generated.h"):
            schema = h[: -len("_generated.h")] + ".fbs"
            if (root / schema).is_file():
                result.generated.append((h, schema))
    result.external = sorted(external)
    return result
