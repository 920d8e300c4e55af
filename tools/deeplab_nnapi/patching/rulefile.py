"""The rule file (``patches/models/rule.toml``): which files of a tree change, and how.

See the file's own header for the format. :func:`load_rule` validates it into :class:`Rule`; the edits
themselves are made by :mod:`deeplab_nnapi.patching.pyrule`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fileio import sha256_bytes
from deeplab_nnapi.patching import pyrule
from deeplab_nnapi.patching.manifest import safe_relpath

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA = 1


@dataclass(frozen=True)
class FileRule:
    path: str
    slug: str
    order: int
    optional: bool
    subject: str
    edits: Tuple[pyrule.CallEdit, ...]

    def scan(self, src: bytes) -> List[pyrule.Site]:
        return pyrule.scan(src, self.edits, self.path)

    def apply(self, src: bytes) -> pyrule.Result:
        return pyrule.apply(src, self.edits, self.path)

    def revert(self, src: bytes) -> pyrule.Result:
        return pyrule.revert(src, self.edits, self.path)


@dataclass(frozen=True)
class Rule:
    path: Path
    sha256: str
    author: str
    date: str
    body: str
    files: Tuple[FileRule, ...]

    def file(self, rel: str) -> Optional[FileRule]:
        return next((f for f in self.files if f.path == rel), None)


def _need(d: dict, key: str, typ, where: str):
    if key not in d:
        raise UsageError(f"{where}: missing key {key!r}")
    value = d[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UsageError(f"{where}: {key!r} must be a {getattr(typ, '__name__', typ)}")
    return value


def _edit(d: dict, where: str) -> pyrule.CallEdit:
    calls = _need(d, "calls", list, where)
    within = d.get("within", [])
    if not calls or not all(isinstance(c, str) and c.isidentifier() for c in calls):
        raise UsageError(f"{where}: 'calls' must be a non-empty list of names")
    if not isinstance(within, list) or not all(isinstance(c, str) and c.isidentifier() for c in within):
        raise UsageError(f"{where}: 'within' must be a list of function names")
    upstream = d.get("upstream")
    if upstream is not None and not isinstance(upstream, str):
        raise UsageError(f"{where}: 'upstream' must be a string")
    return pyrule.CallEdit(
        calls=tuple(calls),
        keyword=_need(d, "keyword", str, where),
        position=_need(d, "position", int, where),
        to=_need(d, "to", str, where),
        upstream=upstream,
        within=tuple(within),
        why=str(d.get("why", "")),
    )


def load_rule(path: Path) -> Rule:
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: rule file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the rule file: {exc}") from None
    if data.get("schema") != SCHEMA:
        raise UsageError(f"{path}: schema {data.get('schema')!r} is not supported (expected {SCHEMA})")
    files: List[FileRule] = []
    seen: Dict[str, int] = {}
    for i, f in enumerate(data.get("file", [])):
        where = f"{path}: [[file]] #{i + 1}"
        rel = _need(f, "path", str, where)
        if not safe_relpath(rel):
            raise UsageError(f"{where}: path {rel!r} is not a relative path inside the tree")
        if rel in seen:
            raise UsageError(f"{where}: {rel} appears twice")
        seen[rel] = i
        edits = tuple(_edit(e, f"{where} edit #{k + 1}") for k, e in enumerate(f.get("edit", [])))
        if not edits:
            raise UsageError(f"{where}: no [[file.edit]]")
        files.append(
            FileRule(
                rel,
                _need(f, "slug", str, where),
                _need(f, "order", int, where),
                bool(f.get("optional", False)),
                _need(f, "subject", str, where),
                edits,
            )
        )
    if not files:
        raise UsageError(f"{path}: no [[file]] entries")
    return Rule(
        path,
        sha256_bytes(raw),
        _need(data, "author", str, str(path)),
        _need(data, "date", str, str(path)),
        str(data.get("body", "")).strip("\n"),
        tuple(sorted(files, key=lambda f: f.order)),
    )
