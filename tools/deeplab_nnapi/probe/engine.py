"""The real delegate of a source tree as a delegation engine, beside the predictor.

Public API::

    from deeplab_nnapi.probe.engine import RealDelegate
    real = RealDelegate(Path("~/src/LiteRT"), delegate="patched", progress=print)
    results = real.plans(models, [DelegateOptions(android_api=29), DelegateOptions(android_api=30)])
    # one DelegationPlan (engine "probe") or ProbeFailure per model and option set, models outer

``delegate="patched"`` builds from a scratch copy with our patch set applied (:mod:`.patched`); the tree
is only read. Builds are cached (:mod:`.build`), so the second use of a tree state costs nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import DELEGATES, DelegateOptions, DelegationPlan
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel
from deeplab_nnapi.patching.layout import detect
from deeplab_nnapi.probe.build import ProbeBuild, build_probe
from deeplab_nnapi.probe.patched import patch_copy
from deeplab_nnapi.probe.run import ProbeFailure, ProbeSettings, run_binary, to_result
from deeplab_nnapi.probe.sources import collect_sources, find_lite_tree

Result = Union[DelegationPlan, ProbeFailure]


def _git_commit(root: Path) -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    top = (
        subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
        if out.returncode == 0
        else ""
    )
    if out.returncode == 0 and top and Path(top).resolve() == root.resolve():
        return out.stdout.strip()
    return None


class RealDelegate:
    def __init__(
        self,
        source_dir: Union[str, Path],
        delegate: str = "stock",
        *,
        cache_dir: Optional[Path] = None,
        jobs: Optional[int] = None,
        progress: Optional[Callable[[str], None]] = None,
    ):
        if delegate not in DELEGATES:
            raise UsageError(f"delegate {delegate!r}: expected one of {', '.join(DELEGATES)}")
        self.tree = find_lite_tree(source_dir)
        self.delegate = delegate
        self.cache_dir = cache_dir
        self.jobs = jobs
        self.progress = progress
        self._build: Optional[ProbeBuild] = None
        self._source: Dict[str, Any] = {}

    # -- building ---------------------------------------------------------------------------------------
    def build(self) -> ProbeBuild:
        if self._build is not None:
            return self._build
        try:
            version = detect(self.tree.root, None).shown_version
        except UsageError:
            version = None  # a TFLite-only tree: no version file
        source: Dict[str, Any] = {
            "tree": str(self.tree.root),
            "layout": self.tree.kind,
            "version": version,
            "commit": _git_commit(self.tree.root),
            "delegate": self.delegate,
        }
        if self.delegate == "stock":
            built = build_probe(
                self.tree.root, cache_dir=self.cache_dir, jobs=self.jobs, progress=self.progress
            )
        else:
            scratch = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-patched-"))
            try:
                sources = collect_sources(self.tree)
                copy = patch_copy(
                    self.tree,
                    sources,
                    scratch / "tree",
                    log=(lambda m: self.progress(f"patch: {m}")) if self.progress else None,
                )
                source["patch"] = copy.to_json()
                built = build_probe(
                    copy.root, cache_dir=self.cache_dir, jobs=self.jobs, progress=self.progress
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        source["build"] = {"key": built.key, "translation_units": built.sources, "toolchain": built.toolchain}
        self._build, self._source = built, source
        return built

    @property
    def source(self) -> Dict[str, Any]:
        self.build()
        return dict(self._source)

    # -- probing -----------------------------------------------------------------------------------------
    def plans(self, models: Sequence[TFLiteModel], option_sets: Sequence[DelegateOptions]) -> List[Result]:
        """The real delegate's answer for every model and option set (models outer, options inner)."""
        built = self.build()
        for o in option_sets:
            o.validated()
        # Option sets that differ only in the API level share one probe run.
        groups: Dict[ProbeSettings, List[int]] = {}
        for o in option_sets:
            groups.setdefault(ProbeSettings.of(o), [])
            if o.android_api not in groups[ProbeSettings.of(o)]:
                groups[ProbeSettings.of(o)].append(o.android_api)
        answers: Dict[tuple, dict] = {}
        scratch = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-probe-"))
        try:
            paths = []
            for i, m in enumerate(models):
                p = scratch / f"{i:06d}.tflite"
                p.write_bytes(m._data if m._data is not None else Path(m.source).read_bytes())
                paths.append(p)
            for settings, apis in groups.items():
                for k, case in enumerate(run_binary(built.binary, paths, apis, settings)):
                    answers[(k // len(apis), settings, apis[k % len(apis)])] = case
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        out: List[Result] = []
        for i, m in enumerate(models):
            for o in option_sets:
                case = answers[(i, ProbeSettings.of(o), o.android_api)]
                out.append(to_result(case, m, o, self._source))
        return out
