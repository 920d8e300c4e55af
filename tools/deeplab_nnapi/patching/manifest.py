"""The patch manifest (``patches/manifest.toml``): load, validate, verify checksums, select by version.

Schema 1::

    schema = 1
    [[patch]]
    name = "tf-nnapi-avgpool-area-shape-b"       # unique id
    target = "tensorflow"                        # "tensorflow" | "models"
    file = "tensorflow/shape-b/0001-....patch"   # relative to the manifest's directory
    versions = ">=2.3,<2.5"                      # PEP 440 specifier set; "" = any version
    order = 1                                    # position within the set applied to one tree
    touches = ["tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"]
    sha256 = "<sha256 of the patch file bytes>"
    purpose = "one line"
    verified_against = ["v2.3.0 (<sha>)"]
    upstream_commits = []                        # optional (models patches)
    upstream_blobs = ["path <blob id>"]          # optional: pre-image git blob per touched file, where no
                                                 # commit id could be read (identifies the upstream text)
    fixed_marker = "regex"                       # optional: the check the patch relaxes
    fixed_evidence = "regex"                     # optional: what a text without the check still has (the
                                                 # code the check lived in); fixed-upstream needs it
    check_traces = ["regex"]                     # optional: remains of the check in a form no patch knows
                                                 # (any match: not fixed-upstream, a conflict)
    layout = "tensorflow"                        # optional (tensorflow target): the tree layout the patch's
                                                 # paths are for: "tensorflow" (also tflite-only trees) or
                                                 # "litert" (google-ai-edge/LiteRT); see patching.layout
    shape = "c"                                  # optional: the upstream shape of the code the patch fits
    post_blobs = ["path <blob id>"]              # optional: post-image git blob per touched file

A manifest may ``include = ["models/manifest.toml"]``: the included file's entries are added (their
``file`` relative to the included file's directory). A manifest (or included one) may name the rule its
patches are generated from: ``rule = "rule.toml"`` and ``rule_sha256`` (see :mod:`.rulefile`); the rule
is then checked like a patch file.

Selection (rules per target in :data:`SELECTION`):

* ``tensorflow``: the patches whose ``versions`` contain the tree's release number, applied as a set
  in ``order``; patches that share an ``order`` are alternatives. When none of a position's
  alternatives fits the tree, the same-``order`` variants for *other* versions are tried as a
  fallback (version boundaries drawn from source snapshots may be off by a release; the shapes are
  distinct, so at most one applies) and the report says so.
* ``models``: tensorflow/models has no versions; ``order`` is the position of one file (core/utils.py,
  model.py, export_model.py), and every variant at that position is an alternative: one patch per
  upstream text of that file (see :mod:`.generate`).

Where the manifest is: ``--manifest FILE``, else ``$DEEPLAB_NNAPI_PATCHES/manifest.toml``, else the patch set
an installed package carries (``deeplab_nnapi/patches/manifest.toml``), else ``<repo>/patches/manifest.toml``
of the clone (:func:`deeplab_nnapi.resources.patches_dir`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.fileio import sha256_bytes
from deeplab_nnapi.resources import ENV_PATCHES, MANIFEST_NAME, patches_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA = 1
TARGETS = ("tensorflow", "models")
#: target -> how its matching patches are grouped: "by-order" (a set applied in order; same order =
#: alternatives) or "alternatives" (all are variants of one change, tried in order).
SELECTION = {"tensorflow": "by-order", "models": "by-order"}
#: targets whose unselected same-order variants are tried when the selected ones do not fit.
FALLBACK_TARGETS = ("tensorflow",)
LAYOUTS = ("tensorflow", "litert")

#: key -> (python types accepted, required)
_FIELDS: Dict[str, tuple] = {
    "name": (str, True),
    "target": (str, True),
    "file": (str, True),
    "versions": (str, True),
    "order": (int, True),
    "touches": (list, True),
    "sha256": (str, True),
    "purpose": (str, True),
    "verified_against": (list, True),
    "upstream_commits": (list, False),
    "upstream_blobs": (list, False),
    "fixed_marker": (str, False),
    "fixed_evidence": (str, False),
    "check_traces": (list, False),
    "layout": (str, False),
    "shape": (str, False),
    "post_blobs": (list, False),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def safe_relpath(text: str) -> bool:
    """True when ``text`` is a relative POSIX path that stays inside its root (no '..', not absolute)."""
    if not text or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text) or "\\" in text:
        return False
    parts = PurePosixPath(text).parts
    return all(p not in ("..", "") for p in parts) and parts[0] != "."


@dataclass(frozen=True)
class Patch:
    name: str
    target: str
    file: str
    path: Path  # absolute path of the patch file
    versions: SpecifierSet
    order: int
    touches: tuple
    sha256: str
    purpose: str
    verified_against: tuple
    upstream_commits: tuple = ()
    upstream_blobs: tuple = ()
    fixed_marker: Optional[str] = None
    index: int = 0  # position in the manifest (tie-break among alternatives)
    versions_raw: str = ""  # the specifier set as the manifest writes it
    layout: str = "tensorflow"
    shape: Optional[str] = None
    post_blobs: tuple = ()
    fixed_evidence: Optional[str] = None
    check_traces: tuple = ()

    def blob_of(self, rel: str, post: bool = False) -> Optional[str]:
        """The pre- (or post-) image blob the manifest names for ``rel``."""
        for item in self.post_blobs if post else self.upstream_blobs:
            path, _, blob = item.rpartition(" ")
            if path == rel:
                return blob
        return None

    @property
    def versions_text(self) -> str:
        return self.versions_raw.strip() or str(self.versions) or "any"

    def matches(self, version: Optional[Version]) -> bool:
        """Whether the patch is for ``version`` (a release number); None = version unknown/irrelevant."""
        if version is None or not str(self.versions):
            return True
        return self.versions.contains(version, prereleases=True)

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise UsageError(f"patch {self.name}: cannot read {self.path}: {exc.strerror}") from None

    def actual_sha256(self) -> str:
        return sha256_bytes(self.read())

    def verify(self) -> bytes:
        """Return the patch bytes after checking their sha256 against the manifest (UsageError if not)."""
        data = self.read()
        got = sha256_bytes(data)
        if got != self.sha256:
            raise UsageError(
                f"patch {self.name}: sha256 of {self.file} is {got}, the manifest says {self.sha256} "
                "(patch file modified or manifest stale)"
            )
        return data


@dataclass(frozen=True)
class RuleRef:
    target: str
    path: Path
    sha256: str


@dataclass
class Manifest:
    path: Path
    patches: List[Patch] = field(default_factory=list)
    rules: Dict[str, RuleRef] = field(default_factory=dict)

    def rule(self, target: str):
        """The verified rule the ``target`` patches are generated from (see :mod:`.rulefile`), or None."""
        ref = self.rules.get(target)
        if ref is None:
            return None
        from deeplab_nnapi.patching.rulefile import load_rule

        rule = load_rule(ref.path)
        if rule.sha256 != ref.sha256:
            raise UsageError(
                f"rule {ref.path}: sha256 is {rule.sha256}, the manifest says {ref.sha256} "
                "(rule modified or manifest stale: regenerate with tools/generate_model_patches.py)"
            )
        return rule

    @property
    def root(self) -> Path:
        return self.path.parent

    def for_target(self, target: str) -> List[Patch]:
        return sorted((p for p in self.patches if p.target == target), key=lambda p: (p.order, p.index))

    def select(
        self, target: str, version: Optional[Version], layout: str = "tensorflow"
    ) -> List[List[Patch]]:
        """Patches for ``target`` at ``version`` (None: any) in a tree of ``layout``, as groups of
        alternatives in ``order``."""
        groups: Dict[int, List[Patch]] = {}
        by_order = SELECTION.get(target, "by-order") == "by-order"
        for p in self.for_target(target):
            if target == "tensorflow" and p.layout != layout:
                continue
            if p.matches(version):
                groups.setdefault(p.order if by_order else 0, []).append(p)
        return [groups[k] for k in sorted(groups)]

    def fallbacks(self, target: str, group: List[Patch]) -> List[Patch]:
        """Variants of ``target`` at the same position as ``group`` but for other versions."""
        if target not in FALLBACK_TARGETS or not group:
            return []
        orders = {p.order for p in group}
        layouts = {p.layout for p in group}
        return [
            p for p in self.for_target(target) if p.order in orders and p not in group and p.layout in layouts
        ]

    def supported(self, target: str) -> List[str]:
        """The distinct version specifiers of ``target``'s patches, in manifest order."""
        seen: List[str] = []
        for p in sorted((p for p in self.patches if p.target == target), key=lambda p: p.index):
            if p.versions_text not in seen:
                seen.append(p.versions_text)
        return seen

    def by_name(self, name: str) -> Patch:
        for p in self.patches:
            if p.name == name:
                return p
        raise KeyError(name)


def default_manifest_path() -> Path:
    return patches_dir() / MANIFEST_NAME


def _entry_error(path: Path, i: int, entry: dict, msg: str) -> UsageError:
    who = entry.get("name") if isinstance(entry.get("name"), str) else f"#{i + 1}"
    return UsageError(f"{path}: patch {who}: {msg}")


def _parse_entry(path: Path, i: int, entry: dict) -> Patch:
    if not isinstance(entry, dict):
        raise UsageError(f"{path}: [[patch]] #{i + 1} is not a table")
    for key, (typ, required) in _FIELDS.items():
        if key not in entry:
            if required:
                raise _entry_error(path, i, entry, f"missing key {key!r}")
            continue
        value = entry[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise _entry_error(path, i, entry, f"{key!r} must be a {typ.__name__}")
        if typ is list and not all(isinstance(v, str) for v in value):
            raise _entry_error(path, i, entry, f"{key!r} must be a list of strings")
    if entry["target"] not in TARGETS:
        raise _entry_error(path, i, entry, f"target {entry['target']!r} is not one of {', '.join(TARGETS)}")
    if not safe_relpath(entry["file"]):
        raise _entry_error(path, i, entry, f"file {entry['file']!r} must be a relative path inside patches/")
    try:
        spec = SpecifierSet(entry["versions"])
    except InvalidSpecifier:
        raise _entry_error(
            path, i, entry, f"versions {entry['versions']!r} is not a PEP 440 specifier set"
        ) from None
    if not _SHA256.match(entry["sha256"]):
        raise _entry_error(path, i, entry, "sha256 must be 64 lowercase hex digits")
    if not entry["touches"]:
        raise _entry_error(path, i, entry, "touches is empty")
    for t in entry["touches"]:
        if not safe_relpath(t):
            raise _entry_error(path, i, entry, f"touches {t!r} is not a relative path inside the tree")
    layout = entry.get("layout", "tensorflow")
    if layout not in LAYOUTS:
        raise _entry_error(path, i, entry, f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    for key in ("upstream_blobs", "post_blobs"):
        for item in entry.get(key, []):
            rel, _, blob = item.rpartition(" ")
            if not rel or not re.match(r"^[0-9a-f]{40}$", blob):
                raise _entry_error(path, i, entry, f"{key} item {item!r} is not '<path> <40-hex blob id>'")
    marker = entry.get("fixed_marker")
    for key, rx in [("fixed_marker", marker), ("fixed_evidence", entry.get("fixed_evidence"))] + [
        ("check_traces", t) for t in entry.get("check_traces", [])
    ]:
        if rx is None:
            continue
        try:
            re.compile(rx, re.M)
        except re.error as exc:
            raise _entry_error(path, i, entry, f"{key} is not a valid regex: {exc}") from None
    return Patch(
        name=entry["name"],
        target=entry["target"],
        file=entry["file"],
        path=path.parent / entry["file"],
        versions=spec,
        versions_raw=entry["versions"],
        order=entry["order"],
        touches=tuple(entry["touches"]),
        sha256=entry["sha256"],
        purpose=entry["purpose"],
        verified_against=tuple(entry["verified_against"]),
        upstream_commits=tuple(entry.get("upstream_commits", ())),
        upstream_blobs=tuple(entry.get("upstream_blobs", ())),
        fixed_marker=marker,
        index=i,
        layout=layout,
        shape=entry.get("shape"),
        post_blobs=tuple(entry.get("post_blobs", ())),
        fixed_evidence=entry.get("fixed_evidence"),
        check_traces=tuple(entry.get("check_traces", ())),
    )


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: manifest not found (use --manifest or ${ENV_PATCHES})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the manifest: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def _load_entries(
    path: Path, data: dict, patches: List[Patch], rules: Dict[str, RuleRef], depth: int
) -> None:
    schema = data.get("schema")
    if schema != SCHEMA:
        raise UsageError(f"{path}: schema {schema!r} is not supported (expected schema = {SCHEMA})")
    entries = data.get("patch", [])
    if not isinstance(entries, list):
        raise UsageError(f"{path}: [[patch]] must be an array of tables")
    for e in entries:
        patches.append(_parse_entry(path, len(patches), e))
    if "rule" in data:
        rel, sha = data.get("rule"), data.get("rule_sha256")
        targets = {p.target for p in patches[len(patches) - len(entries) :]}
        if (
            not isinstance(rel, str)
            or not safe_relpath(rel.replace("../", ""))
            or not isinstance(sha, str)
            or not _SHA256.match(sha)
            or len(targets) != 1
        ):
            raise UsageError(f"{path}: 'rule' needs a relative path, 'rule_sha256' and patches of one target")
        target = targets.pop()
        rules[target] = RuleRef(target, (path.parent / rel).resolve(), sha)
    includes = data.get("include", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) and safe_relpath(i) for i in includes):
        raise UsageError(f"{path}: 'include' must be a list of relative paths")
    if includes and depth >= 3:
        raise UsageError(f"{path}: includes nested too deep")
    for inc in includes:
        sub = path.parent / inc
        _load_entries(sub, _read_toml(sub), patches, rules, depth + 1)


def load_manifest(path: Optional[Path] = None) -> Manifest:
    """Load and validate a manifest (see the module doc for where it is looked up). Raises UsageError."""
    path = Path(path) if path is not None else default_manifest_path()
    data = _read_toml(path)
    if not data:
        raise UsageError(f"{path}: the manifest is empty (expected schema = {SCHEMA} and [[patch]] entries)")
    patches: List[Patch] = []
    rules: Dict[str, RuleRef] = {}
    _load_entries(path, data, patches, rules, 0)
    if not patches:
        raise UsageError(f"{path}: no [[patch]] entries")
    names: Dict[str, int] = {}
    for p in patches:
        if p.name in names:
            raise UsageError(f"{path}: patch name {p.name!r} appears twice")
        names[p.name] = 1
    return Manifest(path=path, patches=patches, rules=rules)


def check_files(manifest: Manifest, patches: Optional[Sequence[Patch]] = None) -> List[str]:
    """Problems with the patch files themselves (missing, sha256 mismatch), one line each."""
    problems = []
    for p in patches if patches is not None else manifest.patches:
        if not p.path.is_file():
            problems.append(f"patch {p.name}: {p.file} is missing")
            continue
        got = p.actual_sha256()
        if got != p.sha256:
            problems.append(f"patch {p.name}: sha256 of {p.file} is {got}, the manifest says {p.sha256}")
    return problems
