"""Build the probe (``nnapi_probe``) from a TensorFlow or LiteRT tree on the host, once per source state.

Public API::

    from deeplab_nnapi.probe.build import build_probe
    built = build_probe(Path("~/src/LiteRT"), progress=print)   # ProbeBuild
    built.binary, built.key, built.cached, built.compiled, built.seconds

What is compiled is the include closure of the recipe's seeds (:mod:`deeplab_nnapi.probe.sources`) plus
``nnapi_probe.cc``, with the system compiler; flatc regenerates the tree's ``*_generated.h`` from their
``.fbs`` first. Two caches, both under :func:`default_cache_dir`:

* ``builds/<key>/nnapi_probe``: the key hashes the recipe, the toolchain's versions, the probe's sources
  and the content of every file of the closure. The same tree state is never built twice;
* ``objects/<key>.o``: per translation unit, keyed by the content of the files it reaches. A patched copy
  of a tree recompiles only what the patch touches (the delegate), then links.

A tree the recipe cannot build gets one line (:class:`ProbeBuildError`, exit 2) naming what is missing
or the first compiler error; the whole log stays in the build directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.probe.sources import (
    ProbeTree,
    Recipe,
    SourceSet,
    collect_sources,
    find_lite_tree,
    load_recipe,
)
from deeplab_nnapi.probe.toolchain import Toolchain, find_toolchain

#: Bumped when the way the probe is built changes in a way the hashed inputs do not show.
RECIPE_VERSION = "1"
PROBE_SOURCE = "nnapi_probe.cc"
BINARY = "nnapi_probe"

Progress = Callable[[str], None]


class ProbeBuildError(UsageError):
    """The tree could not be built into a probe: one line, the log's path in it."""


@dataclass(frozen=True)
class ProbeBuild:
    binary: Path
    key: str
    tree: ProbeTree
    sources: int  # translation units, the probe included
    compiled: int  # of them compiled by this call (0: everything came from the caches)
    cached: bool  # the linked probe itself came from the cache
    seconds: float
    toolchain: str

    def to_json(self) -> dict:
        return {
            "binary": str(self.binary),
            "key": self.key,
            "tree": str(self.tree.root),
            "layout": self.tree.kind,
            "translation_units": self.sources,
            "compiled": self.compiled,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "toolchain": self.toolchain,
        }


def default_cache_dir() -> Path:
    """``$DEEPLAB_NNAPI_CACHE/probe``, else ``$XDG_CACHE_HOME/deeplab-nnapi/probe`` (``~/.cache``)."""
    env = os.environ.get("DEEPLAB_NNAPI_CACHE")
    if env:
        return Path(env) / "probe"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deeplab-nnapi" / "probe"


def native_dir() -> Path:
    """Where nnapi_probe.cc and the shims live (package data)."""
    return Path(str(resources.files("deeplab_nnapi.probe").joinpath("native")))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Hasher:
    """Content hashes of tree files, read once."""

    def __init__(self, root: Path):
        self.root = root
        self._memo: Dict[str, str] = {}

    def __call__(self, rel: str) -> str:
        h = self._memo.get(rel)
        if h is None:
            try:
                h = _sha((self.root / rel).read_bytes())
            except OSError as exc:
                raise ProbeBuildError(f"{self.root / rel}: cannot read ({exc.strerror or exc})") from None
            self._memo[rel] = h
        return h


def _native_files() -> Dict[str, bytes]:
    base = native_dir()
    out = {}
    for p in sorted(base.rglob("*")):
        if p.is_file() and p.suffix in (".cc", ".h"):
            out[p.relative_to(base).as_posix()] = p.read_bytes()
    return out


def _recipe_text() -> bytes:
    return resources.files("deeplab_nnapi").joinpath("data/probe_build.toml").read_bytes()


def build_key(sources: SourceSet, toolchain: Toolchain, hasher: Optional[_Hasher] = None) -> str:
    """The cache key of a probe build: recipe, toolchain versions, probe sources, every closure file."""
    hasher = hasher or _Hasher(sources.tree.root)
    h = hashlib.sha256()
    h.update(f"recipe {RECIPE_VERSION}\n".encode())
    h.update(_sha(_recipe_text()).encode())
    h.update(f"\ntoolchain {toolchain.fingerprint}\nlite {sources.tree.lite}\n".encode())
    for name, data in _native_files().items():
        h.update(f"native {name} {_sha(data)}\n".encode())
    for rel in sorted(set(sources.sources) | set(sources.headers)):
        h.update(f"{rel} {hasher(rel)}\n".encode())
    for _header, schema in sources.generated:
        h.update(f"schema {schema} {hasher(schema)}\n".encode())
    return h.hexdigest()[:24]


def object_key(
    sources: SourceSet, unit: str, flags: Sequence[str], toolchain: Toolchain, hasher: _Hasher
) -> str:
    """The cache key of one translation unit: its flags and the content of every tree file it reaches."""
    generated = dict(sources.generated)
    h = hashlib.sha256()
    h.update(f"recipe {RECIPE_VERSION}\ntoolchain {toolchain.fingerprint}\n".encode())
    h.update(" ".join(flags).encode())
    for rel in sources.closure_of(unit):
        h.update(f"\n{rel} {hasher(rel)}".encode())
        if rel in generated:
            h.update(f" schema {hasher(generated[rel])}".encode())
    return h.hexdigest()[:24]


def probe_header(sources: SourceSet) -> str:
    lines = [
        "// Written by deeplab_nnapi.probe.build: the TFLite headers nnapi_probe.cc uses, in this tree.",
        "#pragma once",
    ]
    lines += [f'#include "{h}"' for h in sources.probe_headers]
    return "\n".join(lines) + "\n"


def _compile_flags(recipe: Recipe, toolchain: Toolchain, gen: Path, root: Path, c: bool) -> List[str]:
    flags = [f"-std={recipe.c_std if c else recipe.cxx_std}", recipe.opt, "-w", "-fno-strict-aliasing"]
    flags += [f"-D{d}" for d in recipe.defines]
    flags += [f"-I{gen}", f"-I{root}", f"-I{toolchain.flatbuffers_include}"]
    flags += [f"-isystem{p}" for p in recipe.system_includes]
    flags += [f"-idirafter{native_dir() / 'shims'}"]
    return flags


def _key_flags(flags: Sequence[str]) -> List[str]:
    """The flags that go into an object's key: not the search paths (the build's scratch directory is in
    them); what they find is hashed instead."""
    return [f for f in flags if not f.startswith(("-I", "-isystem", "-idirafter"))]


_FATAL = re.compile(r"fatal error: ([^:\s]+): No such file or directory")
_ERROR = re.compile(r"^(\S+?):(\d+):(?:\d+:)? error: (.*)$", re.M)
_UNDEFINED = re.compile(r"undefined reference to `([^']+)'")


def explain_failure(log: str, recipe: Recipe, tree: ProbeTree) -> str:
    """One line from a compiler's or linker's output: what is missing, or the first error."""
    m = _FATAL.search(log)
    if m:
        include = m.group(1)
        provider = recipe.provider(include)
        if provider and provider.install:
            return f"{include} not found ({provider.install})"
        return f"{include} not found: the tree lacks a file its own sources include"
    m = _ERROR.search(log)
    if m:
        path = m.group(1)
        try:
            path = str(Path(path).resolve().relative_to(tree.root))
        except ValueError:
            pass
        return f"{path}:{m.group(2)}: {m.group(3).strip()}"
    m = _UNDEFINED.search(log)
    if m:
        return f"link: undefined reference to {m.group(1)}"
    last = [ln for ln in log.splitlines() if ln.strip()]
    return last[-1].strip() if last else "the compiler failed without a message"


def build_probe(
    tree_root: Union[str, Path],
    *,
    cache_dir: Optional[Path] = None,
    jobs: Optional[int] = None,
    progress: Optional[Progress] = None,
    recipe: Optional[Recipe] = None,
    toolchain: Optional[Toolchain] = None,
) -> ProbeBuild:
    start = time.monotonic()
    say = progress or (lambda _msg: None)
    recipe = recipe or load_recipe()
    tree = find_lite_tree(tree_root, recipe)
    sources = collect_sources(tree, recipe)
    toolchain = toolchain or find_toolchain(recipe.absl_pkgconfig_prefix)
    hasher = _Hasher(tree.root)
    key = build_key(sources, toolchain, hasher)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    out_dir = cache / "builds" / key
    binary = out_dir / BINARY
    units = len(sources.sources) + 1
    if binary.is_file() and os.access(binary, os.X_OK):
        return ProbeBuild(binary, key, tree, units, 0, True, time.monotonic() - start, toolchain.description)

    objects_dir = cache / "objects"
    objects_dir.mkdir(parents=True, exist_ok=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".tmp", dir=out_dir.parent))
    try:
        gen = work / "gen"
        gen.mkdir()
        (gen / "probe_tflite.h").write_text(probe_header(sources), encoding="utf-8")
        for header, schema in sources.generated:
            dest = gen / Path(header).parent
            dest.mkdir(parents=True, exist_ok=True)
            say(f"flatc {schema}")
            fixed = work / "schemas" / schema
            fixed.parent.mkdir(parents=True, exist_ok=True)
            text = (tree.root / schema).read_text(encoding="utf-8")
            fixed.write_text(recipe.fix_schema(text), encoding="utf-8")
            cmd = [toolchain.flatc, *recipe.flatc_args, "-o", str(dest), str(fixed)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=toolchain.env())
            made = dest / Path(header).name
            if proc.returncode != 0 or not made.is_file():
                (work / "build.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
                raise ProbeBuildError(
                    f"cannot build the probe from {tree.root}: flatc {schema}: "
                    + explain_failure(proc.stdout + proc.stderr, recipe, tree)
                )
        # The probe's own source, compiled against this tree's headers (gen/probe_tflite.h).
        probe_src = work / PROBE_SOURCE
        shutil.copyfile(native_dir() / PROBE_SOURCE, probe_src)

        jobs_list = []  # (label, source path, flags, object path, key)
        for rel in sources.sources:
            flags = _compile_flags(recipe, toolchain, gen, tree.root, rel.endswith(".c"))
            okey = object_key(sources, rel, _key_flags(flags), toolchain, hasher)
            jobs_list.append((rel, tree.root / rel, flags, objects_dir / f"{okey}.o", rel.endswith(".c")))
        probe_flags = _compile_flags(recipe, toolchain, gen, tree.root, False)
        probe_key = _sha(("probe " + key).encode())[:24]
        jobs_list.append((PROBE_SOURCE, probe_src, probe_flags, objects_dir / f"probe-{probe_key}.o", False))

        todo = [j for j in jobs_list if not j[3].is_file()]
        done = [0]
        errors: List[str] = []

        def compile_one(job) -> None:
            label, src, flags, obj, is_c = job
            if errors:
                return
            tmp = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
            cmd = [toolchain.cc if is_c else toolchain.cxx, *flags, "-c", str(src), "-o", str(tmp)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=toolchain.env())
            if proc.returncode != 0:
                errors.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
                tmp.unlink(missing_ok=True)
                return
            os.replace(tmp, obj)
            done[0] += 1
            say(f"compiled {done[0]}/{len(todo)} {label}")

        n_jobs = jobs or max(1, os.cpu_count() or 1)
        if todo:
            say(
                f"building the probe from {tree.root} ({tree.lite}): {len(todo)} of {units} translation "
                f"units to compile, {n_jobs} jobs"
            )
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(compile_one, todo))
        if errors:
            (work / "build.log").write_text("\n".join(errors), encoding="utf-8")
            kept = out_dir.parent / f"{key}.failed.log"
            shutil.copyfile(work / "build.log", kept)
            raise ProbeBuildError(
                f"cannot build the probe from {tree.root}: "
                f"{explain_failure(errors[0], recipe, tree)} (log: {kept})"
            )
        say("linking nnapi_probe")
        linked = work / BINARY
        cmd = [
            toolchain.cxx,
            "-o",
            str(linked),
            *[str(j[3]) for j in jobs_list],
            "-Wl,--as-needed",
            *toolchain.absl_libs,
            *recipe.libs,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=toolchain.env())
        if proc.returncode != 0:
            kept = out_dir.parent / f"{key}.failed.log"
            kept.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}", encoding="utf-8")
            raise ProbeBuildError(
                f"cannot link the probe from {tree.root}: "
                f"{explain_failure(proc.stdout + proc.stderr, recipe, tree)} (log: {kept})"
            )
        listing = "\n".join(sources.sources + [PROBE_SOURCE]) + "\n"
        (work / "sources.txt").write_text(listing, encoding="utf-8")
        try:
            os.replace(work, out_dir)
        except OSError:  # another process finished the same build first
            if not binary.is_file():
                raise
        return ProbeBuild(
            binary, key, tree, units, len(todo), False, time.monotonic() - start, toolchain.description
        )
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
