"""The export pipeline: checkpoint -> frozen graph -> uint8 TFLite -> verified model + manifest.

Per variant (one at a time, each independent of the others):

1. fetch the checkpoint into the cache (sha256-verified, resumable; :mod:`deeplab_nnapi.export.download`),
   unless the weights are random;
2. build the frozen graph from the patched DeepLab code of ``--models-dir``: by default with TF 2.x +
   tf_slim in a child of this interpreter (:mod:`deeplab_nnapi.export.deeplab_graph`, QAT ranges by
   :mod:`deeplab_nnapi.export.qat`); with ``--export-python`` by running ``deeplab/export_model.py`` itself
   in that (TF 1.15) Python;
3. convert the frozen graph (:mod:`deeplab_nnapi.export.convert`);
4. verify it (:mod:`deeplab_nnapi.export.verify`): one NNAPI partition, right input/output, labels in range;
5. write ``<out>/<name>.tflite`` atomically and update ``<out>/manifest.json`` (also atomically).

``--weights-from MODEL.tflite`` replaces the checkpoint of step 1 by a quantized DeepLab model's values
(:func:`weights_from_provider`), brings the converted model into the model's form where that changes no
arithmetic, and after step 4 compares it with the model tensor by tensor (at the model's size) and, on
request, its labels with the float graph's. A pool window over the patched delegate's 65x65 (a large crop)
is rewritten as fix_model does (:func:`fit_large_pools`). ``--from-graph`` enters at step 3 with an
existing frozen graph. A failing variant leaves no file behind
(an earlier, verified file of the same name stays as it was) and the next variant still runs.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

from deeplab_nnapi import __version__
from deeplab_nnapi.errors import CheckFailed, ToolError, UsageError
from deeplab_nnapi.export.variants import Variant
from deeplab_nnapi.fileio import atomic_write, sha256_bytes
from deeplab_nnapi.native_logs import child_env

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1
PATCH_HINT = "python tools/apply_patches.py --models-dir {path}"


class ExportFailed(CheckFailed):
    """One variant failed at some stage (exit 1 overall)."""


@dataclass
class Outcome:
    name: str
    ok: bool = False
    stage: str = ""  # stage reached (on failure: the stage that failed)
    error: str = ""
    path: Optional[Path] = None
    entry: Dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    conversion_seconds: float = 0.0
    stage_seconds: Dict[str, float] = field(default_factory=dict)  # graph, convert, verify, write

    def to_json(self) -> dict:
        d = {"name": self.name, "ok": self.ok, "stage": self.stage, "seconds": round(self.seconds, 3),
             "conversion_seconds": round(self.conversion_seconds, 3),
             "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}}
        if self.ok:
            d["file"] = str(self.path)
            for k in ("sha256", "size", "quantization", "delegation"):
                d[k] = self.entry.get(k)
            for k in ("fidelity", "agreement", "rewrites"):
                if k in self.entry:
                    d[k] = self.entry[k]
        else:
            d["error"] = self.error
            reasons = self.entry.get("refusals")
            if reasons:
                d["refusals"] = reasons
        return d


# ----------------------------------------------------------------------------------------------------
# small helpers


def _dist_version(*names: str) -> Optional[str]:
    from importlib import metadata

    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


TF_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tf-nightly")


def tool_versions(export_python_tf: Optional[str] = None, builder: Optional[str] = None
                  ) -> Dict[str, Optional[str]]:
    v = {
        "deeplab-nnapi": __version__,
        "python": platform.python_version(),
        "tensorflow (converter)": _dist_version(*TF_DISTRIBUTIONS),
        "ai-edge-litert": _dist_version("ai-edge-litert"),
        "tflite": _dist_version("tflite"),
        "numpy": _dist_version("numpy"),
    }
    if export_python_tf:
        v["tensorflow (export_model.py)"] = export_python_tf
    if builder == TF2_BUILDER:
        v["tensorflow (graph)"] = v["tensorflow (converter)"]
        v["tf-slim"] = _dist_version("tf-slim")
        v["tf-keras"] = _dist_version("tf-keras")
    return v


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ----------------------------------------------------------------------------------------------------
# manifest


def load_manifest(out_dir: Path) -> dict:
    p = Path(out_dir) / MANIFEST
    if p.is_file():
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("schema") == MANIFEST_SCHEMA and isinstance(
                    data.get("models"), dict):
                return data
        except (OSError, ValueError):
            pass
    return {"schema": MANIFEST_SCHEMA, "models": {}}


def write_manifest(out_dir: Path, manifest: dict) -> None:
    # drop entries whose file is gone or no longer matches (edited by hand, replaced, ...)
    models = {}
    for name, entry in sorted(manifest.get("models", {}).items()):
        f = Path(out_dir) / str(entry.get("file", ""))
        if f.is_file() and f.stat().st_size == entry.get("size"):
            models[name] = entry
    manifest["models"] = models
    manifest["updated"] = _now()
    atomic_write(Path(out_dir) / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


# ----------------------------------------------------------------------------------------------------
# upstream side: models dir, checkpoints, export_model.py


def check_models_dir(models_dir: Path) -> str:
    """Refuse a tensorflow/models tree that does not carry our DeepLab patches; return its state message.

    Accepted states: ``applied``, and ``fixed-upstream`` (the upstream code already builds what the
    patches make it build; the verification of each model still guards the result).
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise UsageError(f"--models-dir {models_dir}: not a directory")
    try:
        from deeplab_nnapi.patching.status import tree_status
    except ImportError as exc:
        raise UsageError(f"cannot check --models-dir: patch checker unavailable ({exc})") from None
    try:
        st = tree_status(models_dir, target="models")
    except ToolError as exc:
        msg = str(exc) if str(exc).startswith("--models-dir") else f"--models-dir {models_dir}: {exc}"
        raise UsageError(f"{msg}; run: {PATCH_HINT.format(path=models_dir)}") from None
    if st.state not in ("applied", "fixed-upstream"):
        raise UsageError(f"--models-dir {models_dir} does not carry the DeepLab patches (state {st.state}: "
                         f"{st.message}); run: {PATCH_HINT.format(path=models_dir)}")
    script = models_dir / "research" / "deeplab" / "export_model.py"
    if not script.is_file():
        raise UsageError(f"--models-dir {models_dir}: no research/deeplab/export_model.py")
    return str(st.message)


def models_commit(models_dir: Path) -> Optional[str]:
    """The tree's commit: its git HEAD, else ``$DEEPLAB_NNAPI_MODELS_COMMIT`` (what the container's sources
    stage knows of a tree without ``.git``), else None."""
    try:
        import git

        return git.Repo(models_dir, search_parent_directories=False).head.commit.hexsha
    except Exception:  # not a git checkout (e.g. an unpacked tarball): fine, just not recorded
        return os.environ.get("DEEPLAB_NNAPI_MODELS_COMMIT") or None


@functools.cache
def export_python_tf_version(export_python: str) -> str:
    try:
        r = subprocess.run([export_python, "-c", "import tensorflow as tf; print(tf.__version__)"],
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--export-python {export_python}: cannot run ({exc})") from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"--export-python {export_python}: cannot import tensorflow ({last})")
    return r.stdout.strip().splitlines()[-1]


def run_export_model(variant: Variant, models_dir: Path, checkpoint_prefix: Path, export_python: str,
                     workdir: Path) -> Path:
    """Run the patched deeplab/export_model.py; return the frozen graph path."""
    research = Path(models_dir).resolve() / "research"
    pb = Path(workdir) / f"{variant.name}.pb"
    cmd = [export_python, str(research / "deeplab" / "export_model.py"),
           f"--checkpoint_path={checkpoint_prefix}", f"--export_path={pb}", *variant.export_flags]
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(
        [str(research), str(research / "slim")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = Path(workdir) / f"{variant.name}.export.log"
    with open(log, "wb") as f:
        r = subprocess.run(cmd, cwd=research, env=env, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0 or not pb.is_file():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise ExportFailed(f"export_model.py exited with {r.returncode}: {last}")
    return pb


# ----------------------------------------------------------------------------------------------------
# the pipeline


GraphProvider = Callable[[Variant, Path], "tuple[Path, Dict[str, object]]"]


class Reporter:
    """Progress per variant on stderr (rich)."""

    def __init__(self, total: int, enabled: bool = True):
        from rich.console import Console
        from rich.markup import escape

        self.console = Console(stderr=True, highlight=False)
        self.escape = escape  # names, paths and errors are text, never rich markup
        self.total = total
        self.enabled = enabled
        self.index = 0

    def start(self, name: str) -> None:
        self.index += 1
        if self.enabled:
            self.console.print(f"[bold]\\[{self.index}/{self.total}] {self.escape(name)}[/bold]")

    def stage(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"    {self.escape(text)} ...")

    def done(self, o: Outcome) -> None:
        if not self.enabled:
            return
        if o.ok:
            d = o.entry.get("delegation", {})
            path = self.escape(str(o.path))
            self.console.print(f"    [green]ok[/green] {path} ({o.entry.get('size')} bytes, "
                               f"{d.get('delegate_partitions')} partition, {o.seconds:.1f} s)")
        else:
            self.console.print(f"    [red]FAILED[/red] at {o.stage}: {self.escape(o.error)}")


def process_variant(variant: Variant, out_dir: Path, graph_provider: GraphProvider, manifest: dict, *,
                    calibration_images: Optional[Path] = None, reporter: Optional[Reporter] = None,
                    workdir: Optional[Path] = None) -> Outcome:
    """Graph, convert, verify, (evaluate), write one variant. ``calibration_images`` None: a calibrated
    variant is calibrated on the sample photos. A provider may carry ``postprocess(variant, model) ->
    (model, changes)`` (run after conversion) and ``evaluate(variant, model, workdir, source, stage) ->
    dict`` (after verification; the dict goes into the manifest entry)."""
    from deeplab_nnapi.export.convert import convert_frozen_graph
    from deeplab_nnapi.export.verify import verify_model

    o = Outcome(variant.name)
    start = time.monotonic()
    rep = reporter
    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix=f"deeplab-export-{variant.name}-")
        workdir = Path(own_tmp.name)
    mark = [start]

    def timed(stage: str) -> None:  # close the previous stage's clock, open ``stage``'s
        now = time.monotonic()
        if o.stage:
            o.stage_seconds[o.stage] = now - mark[0]
        mark[0] = now
        o.stage = stage

    try:
        timed("graph")
        if rep:
            rep.stage("frozen graph")
        pb, source = graph_provider(variant, workdir)
        graph = Path(pb).read_bytes()

        timed("convert")
        calib = calibration_images
        if variant.quantization == "calibrated" and calib is None:
            from deeplab_nnapi.export.agreement import photo_inputs

            calib = [x for _, x in photo_inputs(variant.crop)]  # the sample photos
        if rep:
            rep.stage(f"converting ({variant.quantization}"
                      + (", calibrated on the sample photos" if variant.quantization == "calibrated"
                         and calibration_images is None else "") + ")")
        conv = convert_frozen_graph(graph, variant.converter, variant.crop,
                                    variant.quantization, calibration_images=calib)
        o.conversion_seconds = conv.seconds
        model = conv.model
        if variant.quantization == "calibrated" and calibration_images is None:
            conv.calibration["images_from"] = "sample photos"
        post = getattr(graph_provider, "postprocess", None)
        form: List[str] = []
        if post is not None:
            model, form = post(variant, model)

        timed("verify")
        if rep:
            rep.stage("verifying (patched delegate, API 29; ai-edge-litert run)")
        v = verify_model(model, variant.num_classes, variant.crop,
                         mean=variant.converter.mean, std=variant.converter.std)
        rewrites: List[Dict[str, object]] = []
        if not v.single_partition and v.refusals and all(POOL_REFUSAL in r for r in v.refusals):
            if rep:
                rep.stage("image pooling window over the patched delegate's 65x65: AVERAGE_POOL_2D -> MEAN")
            model, rewrites = fit_large_pools(model)
            if rewrites:
                v = verify_model(model, variant.num_classes, variant.crop,
                                 mean=variant.converter.mean, std=variant.converter.std)
        o.entry["refusals"] = v.refusals
        if v.problems:
            raise ExportFailed("; ".join(v.problems))

        evaluation: Dict[str, object] = {}
        evaluate = getattr(graph_provider, "evaluate", None)
        if evaluate is not None:
            timed("evaluate")
            evaluation = evaluate(variant, model, workdir, source, rep.stage if rep else None)

        timed("write")
        target = Path(out_dir) / f"{variant.name}.tflite"
        entry = {
            "file": target.name,
            "sha256": sha256_bytes(model),
            "size": len(model),
            "dataset": variant.dataset,
            "num_classes": variant.num_classes,
            "input": v.input_spec,
            "output": v.output_spec,
            "quantization": {"mode": variant.quantization, "mean": variant.converter.mean,
                             "std": variant.converter.std,
                             **({"default_ranges": list(variant.converter.default_ranges)}
                                if variant.quantization == "dummy" else {}),
                             **({"calibration": conv.calibration} if conv.calibration else {})},
            "delegation": {"delegate": "patched", "android_api": 29,
                           "delegate_partitions": v.delegate_partitions, "plan_nodes": v.plan_nodes,
                           "single_partition": v.single_partition},
            "converter": variant.converter.to_json(),
            "source": {**source, "graph_sha256": sha256_bytes(graph),
                       **({"source_form": form} if form else {})},
            **({"rewrites": rewrites} if rewrites else {}),
            **evaluation,
            "export_flags": list(variant.export_flags),
            "labels_on_test_image": v.labels_seen,
            "conversion_seconds": round(conv.seconds, 3),
            "tool_versions": manifest.get("tool_versions", {}),
            "created": _now(),
        }
        _write_model_and_manifest(out_dir, target, model, variant.name, entry, manifest)
        o.entry, o.path, o.ok = entry, target, True
        timed("done")
    except ToolError as exc:
        o.error = str(exc)
    except OSError as exc:
        o.error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # e.g. a TensorFlow error while calibrating: this variant fails, not the run
        o.error = f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
    finally:
        o.seconds = time.monotonic() - start
        if not o.ok and o.stage:
            o.stage_seconds[o.stage] = time.monotonic() - mark[0]
        if own_tmp is not None:
            own_tmp.cleanup()
    return o


#: The patched delegate's refusal of an image-pooling window over 65 x 65 (a crop over 513 at stride 8, or
#: over 1025 at stride 16; data/nnapi_rules.toml).
POOL_REFUSAL = "Large filter window would overflow"


def fit_large_pools(model: bytes, delegate: str = "patched") -> tuple[bytes, List[Dict[str, object]]]:
    """A model whose only refusals are AVERAGE_POOL_2D windows over the delegate's limit, with those pools
    rewritten as fix_model does (a whole-map pool -> MEAN over H and W; see :mod:`deeplab_nnapi.fixer.pool`);
    the rewrites as JSON. Unchanged (and no rewrites) when the rewrite would not give one partition."""
    from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes

    result = fix_bytes(model, FixOptions(android_api=29, delegate=delegate), source="exported model")
    if not result.rewrites or not result.after.single_partition:
        return model, []
    return result.data, [r.to_json() for r in result.rewrites]


def _write_model_and_manifest(out_dir: Path, target: Path, model: bytes, name: str, entry: dict,
                              manifest: dict) -> None:
    """Write the model, then the manifest; if the manifest cannot be written, put the model file (and the
    in-memory manifest) back as they were, so the directory never holds a model its manifest does not
    describe."""
    models = manifest.setdefault("models", {})
    old_entry = models.get(name)
    old_model = target.read_bytes() if target.is_file() else None
    atomic_write(target, model)
    models[name] = entry
    try:
        write_manifest(out_dir, manifest)
    except BaseException:
        models = manifest.setdefault("models", {})  # write_manifest may have replaced the dict
        if old_entry is None:
            models.pop(name, None)
        else:
            models[name] = old_entry
        if old_model is None:
            target.unlink(missing_ok=True)
        else:
            atomic_write(target, old_model)
        raise


def run(variants: Iterable[Variant], out_dir: Path, graph_provider: GraphProvider, *,
        calibration_images: Optional[Path] = None, progress: bool = True,
        versions: Optional[Dict[str, Optional[str]]] = None, reporter: Optional[Reporter] = None,
        ) -> List[Outcome]:
    variants = list(variants)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: {exc.strerror or exc}") from None
    manifest = load_manifest(out_dir)
    manifest["tool_versions"] = versions or tool_versions()
    rep = reporter or Reporter(len(variants), enabled=progress)
    outcomes = []
    for variant in variants:
        rep.start(variant.name)
        o = process_variant(variant, out_dir, graph_provider, manifest, calibration_images=calibration_images,
                            reporter=rep)
        rep.done(o)
        outcomes.append(o)
    return outcomes


def _fetch_checkpoint(variant: Variant, checkpoint_dir: Path, allow_unpinned: bool, progress: bool,
                      stage: Optional[Callable[[str], None]]) -> tuple[Path, Dict[str, object]]:
    """Download (once) and unpack the variant's checkpoint; return its prefix and the manifest's fields."""
    from deeplab_nnapi.export.download import extract_checkpoint, fetch

    ck = variant.checkpoint
    if ck is None:
        raise ExportFailed("variant has no checkpoint")
    if not ck.pinned and not allow_unpinned:
        raise ExportFailed(f"checkpoint {ck.name} has no pinned sha256 in variants.toml "
                           "(pin it, or pass --allow-unpinned to record the one downloaded)")
    if stage:
        stage(f"checkpoint {ck.filename}")
    got = fetch(ck.url, checkpoint_dir, ck.sha256 or None, progress=progress)
    prefix = extract_checkpoint(got.path, ck.member_dir, ck.prefix, Path(checkpoint_dir) / "extracted",
                                archive_sha256=got.sha256)
    return prefix, {"checkpoint": ck.name, "checkpoint_url": ck.url, "checkpoint_sha256": got.sha256,
                    "checkpoint_pinned": ck.pinned}


def upstream_graph_provider(models_dir: Path, checkpoint_dir: Path, export_python: str, *,
                            allow_unpinned: bool = False, progress: bool = True,
                            stage: Optional[Callable[[str], None]] = None) -> GraphProvider:
    """Checkpoint fetch + patched export_model.py (in ``export_python``, TF 1.x), as a graph provider."""

    def provide(variant: Variant, workdir: Path):
        prefix, source = _fetch_checkpoint(variant, checkpoint_dir, allow_unpinned, progress, stage)
        if stage:
            stage("deeplab/export_model.py")
        pb = run_export_model(variant, models_dir, prefix, export_python, workdir)
        return pb, {"builder": "export_model.py", **source, "models_commit": models_commit(models_dir)}

    return provide


TF2_BUILDER = "tf2-compat"


def tf2_graph_provider(models_dir: Path, checkpoint_dir: Optional[Path], *, weights: str = "checkpoint",
                       seed: int = 0, allow_unpinned: bool = False, progress: bool = True,
                       stage: Optional[Callable[[str], None]] = None) -> GraphProvider:
    """The real DeepLab code built with TF 2.x + tf_slim in a child process (``deeplab_graph``), from the
    variant's checkpoint or with random weights (no download), as a graph provider for :func:`run`."""
    from deeplab_nnapi.export.deeplab_graph import build_frozen_graph

    def provide(variant: Variant, workdir: Path):
        source: Dict[str, object] = {"builder": TF2_BUILDER, "weights": weights}
        prefix = None
        if weights == "checkpoint":
            if checkpoint_dir is None:
                raise ExportFailed("no checkpoint directory")
            prefix, ck = _fetch_checkpoint(variant, checkpoint_dir, allow_unpinned, progress, stage)
            source.update(ck)
        if stage:
            stage(f"graph (DeepLab code on TF 2.x + tf_slim, {weights} weights)")
        pb, info = build_frozen_graph(models_dir, variant, workdir, weights=weights, checkpoint_prefix=prefix,
                                      seed=seed)
        source.update({"models_commit": models_commit(models_dir), "graph_build": info})
        return pb, source

    return provide


def weights_from_provider(models_dir: Path, source, *, agreement: bool = False,
                          images: Optional[Path] = None,
                          stage: Optional[Callable[[str], None]] = None) -> GraphProvider:
    """The real DeepLab code built with TF 2.x + tf_slim, its variables and ranges taken from a quantized
    DeepLab model (``source``: :class:`deeplab_nnapi.export.tflite_weights.SourceModel`).

    After conversion a ``qat`` export takes the source's form where that changes no arithmetic
    (:func:`~deeplab_nnapi.export.tflite_weights.adopt_source_form`). After verification: at the source's
    own crop and output stride the model is compared with the source tensor by tensor (``fidelity``); with
    ``agreement`` the labels on photos (``images``, default the sample photos) are compared with the float
    graph of the same weights and, at the source's size, with the source itself (``agreement``)."""
    from deeplab_nnapi.export.deeplab_graph import build_frozen_graph
    from deeplab_nnapi.export.tflite_weights import adopt_source_form, write_package
    from deeplab_nnapi.fileio import sha256_file

    source_sha = sha256_file(source.path)

    def provide(variant: Variant, workdir: Path):
        package = Path(workdir) / f"{variant.name}.weights.npz"
        write_package(source, package)
        if stage:
            stage(f"graph (DeepLab code on TF 2.x + tf_slim, weights of {Path(source.path).name})")
        pb, info = build_frozen_graph(models_dir, variant, workdir, weights="tflite", weights_package=package,
                                      float_graph=agreement)
        src = {"builder": TF2_BUILDER, "weights": "tflite",
               "weights_from": {**source.summary(), "sha256": source_sha},
               "models_commit": models_commit(models_dir), "graph_build": info}
        return pb, src

    def postprocess(variant: Variant, model: bytes):
        if variant.quantization != "qat":
            return model, []
        return adopt_source_form(model, source)

    def evaluate(variant: Variant, model: bytes, workdir: Path, src: Dict[str, object],
                 stage_: Optional[Callable[[str], None]]) -> Dict[str, object]:
        from deeplab_nnapi.export.compare import tensor_fidelity

        out: Dict[str, object] = {}
        own_size = (tuple(variant.crop) == tuple(source.input_size)
                    and variant.output_stride == source.output_stride)
        if own_size:
            f = tensor_fidelity(model, source.path, model_label=variant.name)
            out["fidelity"] = {k: v for k, v in f.to_json(per_tensor=False).items() if k != "labels"}
        if agreement:
            from deeplab_nnapi.export import agreement as ag

            if stage_:
                stage_("label agreement on photos (float graph in TensorFlow, uint8 model in ai-edge-litert)")
            photos = ag.photo_inputs(variant.crop, images)
            names, inputs = [n for n, _ in photos], [x for _, x in photos]
            labels = ag.model_labels(model, inputs)
            float_pb = (src.get("graph_build") or {}).get("float_graph")
            result = {}
            if float_pb:
                ref = ag.float_labels(Path(float_pb), inputs, input_array=variant.converter.input_array,
                                      output_array=variant.converter.output_array,
                                      mean=variant.converter.mean, std=variant.converter.std)
                result["float_graph"] = ag.agreement("float graph of the same weights (TensorFlow)", names,
                                                     labels, ref).to_json()
            if own_size:
                ref = ag.model_labels(Path(source.path).read_bytes(), inputs)
                result["source_model"] = ag.agreement(f"source model {Path(source.path).name}", names,
                                                      labels, ref).to_json()
            out["agreement"] = result
        return out

    provide.postprocess = postprocess  # type: ignore[attr-defined]
    provide.evaluate = evaluate  # type: ignore[attr-defined]
    return provide


def installed_tensorflow_major() -> Optional[int]:
    """The major version of this interpreter's TensorFlow (None: not installed), without importing it."""
    v = _dist_version(*TF_DISTRIBUTIONS)
    try:
        return int(v.split(".", 1)[0]) if v else None
    except ValueError:
        return None


def check_tf2_builder() -> None:
    """Refuse (exit 2) when this interpreter cannot run the TF 2.x builder."""
    major = installed_tensorflow_major()
    if major is None:
        raise UsageError("building the DeepLab graph needs TensorFlow: pip install 'deeplab-nnapi[export]'")
    missing = [d for d in ("tf-slim", "tf-keras") if _dist_version(d) is None]
    if missing:
        raise UsageError(f"building the DeepLab graph with TensorFlow {major}.x needs "
                         f"{' and '.join(missing)}: pip install 'deeplab-nnapi[export]'")


def file_graph_provider(path: Path) -> GraphProvider:
    def provide(variant: Variant, workdir: Path):
        return Path(path), {"graph_file": Path(path).name}

    return provide


def default_export_python() -> Optional[str]:
    """The Python that runs export_model.py: ``$DEEPLAB_EXPORT_PYTHON``, else this one if it has TF 1.x;
    None means the TF 2.x builder (:func:`tf2_graph_provider`)."""
    env = os.environ.get("DEEPLAB_EXPORT_PYTHON")
    if env:
        return env
    return sys.executable if installed_tensorflow_major() == 1 else None
