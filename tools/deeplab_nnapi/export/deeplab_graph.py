"""DeepLab's inference graph from a models tree, built with TensorFlow 2.x + tf_slim, frozen for conversion.

What TF 1.x's ``deeplab/export_model.py`` does for the TFLite part, with the real upstream code: the
variant's export flags are parsed by the flags ``export_model.py``/``common.py`` define, the input comes from
``export_model._create_input_tensors()`` (resize and pad to the crop, so the MobileNetV2 input has the
crop's static shape), the network from ``model.predict_labels()``; the graph is frozen at the prediction
(``ArgMax``). Weights come from a checkpoint, are random (``weights="random"``: He-normal conv weights
from a seeded NumPy generator, everything else at its initializer; no download needed), or come from a
quantized DeepLab model (``weights="tflite"``: a package of :mod:`.tflite_weights`, the folded weights with
identity batch norms). For a ``qat`` variant the batch norms are folded and the FakeQuant ranges put in
(:mod:`.qat`): from the checkpoint's ``*_quant/{min,max}`` variables, from the model's scales and zero
points, or, with random weights, measured on synthetic images. For a ``dummy`` variant every one of those
points gets the default range, the weights included: the published dummy-quantized form.

It runs in a **child process** of the current interpreter (``python -m deeplab_nnapi.export.deeplab_graph
REQUEST.json``), started by :func:`build_frozen_graph`, because the DeepLab code needs process-wide state
we do not want in ours: ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, absl's global ``FLAGS``
(DeepLab defines ~60 on import, parsed per variant), the TF1 import hook of :mod:`.tf1compat`, and the
memory of the graph build, which the child returns to the system when it exits. The child's output (TF's
log included) goes to ``<workdir>/<variant>.graph.log``; on failure its last line is the error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from deeplab_nnapi.errors import CheckFailed, ToolError
from deeplab_nnapi.fileio import atomic_write

WEIGHTS_MODES = ("checkpoint", "random", "tflite")
ERROR_PREFIX = "deeplab_graph: error: "
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds deeplab_nnapi/


class GraphBuildError(CheckFailed):
    """The DeepLab graph could not be built, restored or frozen (exit 1 for that variant)."""


# ----------------------------------------------------------------------------------------------------
# parent side


def build_frozen_graph(models_dir: Path, variant, workdir: Path, *, weights: str = "checkpoint",
                       checkpoint_prefix: Optional[Path] = None, seed: int = 0,
                       python: Optional[str] = None, weights_package: Optional[Path] = None,
                       float_graph: bool = False) -> Tuple[Path, Dict[str, object]]:
    """Build ``variant``'s frozen graph in a child process; return (``<workdir>/<name>.pb``, build info).

    ``weights="tflite"`` takes the values of ``weights_package`` (:mod:`.tflite_weights`); ``float_graph``
    also writes the float graph before quantization, ``<workdir>/<name>.float.pb`` (``info["float_graph"]``).
    """
    from deeplab_nnapi.export.tf1compat import load_table
    from deeplab_nnapi.native_logs import PASS_THROUGH_VAR, child_env

    if weights not in WEIGHTS_MODES:
        raise ValueError(f"weights must be one of {WEIGHTS_MODES}")
    if weights == "checkpoint" and checkpoint_prefix is None:
        raise ValueError("weights='checkpoint' needs checkpoint_prefix")
    if weights == "tflite" and weights_package is None:
        raise ValueError("weights='tflite' needs weights_package")
    workdir = Path(workdir)
    pb = workdir / f"{variant.name}.pb"
    info_path = workdir / f"{variant.name}.graph.json"
    request = {
        "models_dir": str(Path(models_dir).resolve()),
        "export_flags": list(variant.export_flags),
        "crop_size": list(variant.crop),
        "quantization": variant.quantization,
        "input_array": variant.converter.input_array,
        "output_array": variant.converter.output_array,
        "mean": variant.converter.mean,
        "std": variant.converter.std,
        "qat_fallback_default_ranges": variant.converter.qat_fallback_default_ranges,
        "default_ranges": list(variant.converter.default_ranges),
        "weights": weights,
        "checkpoint": str(checkpoint_prefix) if checkpoint_prefix is not None else None,
        "seed": seed,
        "weights_package": str(weights_package) if weights_package is not None else None,
        "float_out": str(workdir / f"{variant.name}.float.pb") if float_graph else None,
        "out": str(pb),
        "info": str(info_path),
    }
    req_path = workdir / f"{variant.name}.graph-request.json"
    req_path.write_text(json.dumps(request, indent=2), encoding="utf-8")
    env = child_env()
    env.update(load_table().environment)
    env[PASS_THROUGH_VAR] = "1"  # the child's stderr is the log file: keep TF's own lines there
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                               else []))
    log = workdir / f"{variant.name}.graph.log"
    cmd = [python or sys.executable, "-m", "deeplab_nnapi.export.deeplab_graph", str(req_path)]
    with open(log, "wb") as f:
        r = subprocess.run(cmd, cwd=workdir, env=env, stdout=f, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    if r.returncode != 0 or not pb.is_file():
        raise GraphBuildError(f"building the graph failed: {_last_line(log, r.returncode)}")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return pb, info


def _last_line(log: Path, returncode: int) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.startswith(ERROR_PREFIX)]
    if ours:
        return ours[-1][len(ERROR_PREFIX):]
    return f"exit status {returncode}: {lines[-1] if lines else 'no output'}"


# ----------------------------------------------------------------------------------------------------
# child side


def _flags_error(exc: Exception) -> str:
    return f"export flags: {' '.join(str(exc).split())}"


def random_weight_values(variables, seed: int) -> Dict[str, np.ndarray]:
    """He-normal values for every conv/depthwise/fully-connected weight variable, from a seeded NumPy
    generator (the same model on every machine and TensorFlow version)."""
    rng = np.random.default_rng(seed)
    values = {}
    for v in sorted(variables, key=lambda v: v.op.name):
        leaf = v.op.name.rsplit("/", 1)[-1]
        shape = v.shape.as_list()
        if leaf == "depthwise_weights" and len(shape) == 4:
            fan_in = shape[0] * shape[1]
        elif leaf == "weights" and len(shape) == 4:
            fan_in = shape[0] * shape[1] * shape[2]
        elif leaf == "weights" and len(shape) == 2:
            fan_in = shape[0]
        else:
            continue
        values[v.op.name] = rng.normal(0.0, np.sqrt(2.0 / max(1, fan_in)), shape).astype(np.float32)
    return values


def build(req: dict) -> Dict[str, object]:
    """Build, restore or initialise, freeze, and (qat) quantize; write ``req["out"]``; return the info."""
    from deeplab_nnapi.export.tf1compat import CompatLayer
    from deeplab_nnapi.native_logs import import_tensorflow

    t0 = time.monotonic()
    tf = import_tensorflow()
    layer = CompatLayer(req["models_dir"]).install()
    try:
        export_model = layer.import_module("deeplab.export_model")
        common = layer.import_module("deeplab.common")
        model = layer.import_module("deeplab.model")
    except ImportError as exc:
        raise GraphBuildError(f"cannot import the DeepLab code of {req['models_dir']}: {exc}") from None
    if not hasattr(export_model, "_create_input_tensors"):
        raise GraphBuildError("research/deeplab/export_model.py has no _create_input_tensors(): "
                              "an unsupported DeepLab layout")
    flags = tf.compat.v1.flags.FLAGS
    try:
        flags.unparse_flags()
        flags(["export_model.py", *req["export_flags"]])
    except Exception as exc:  # absl's UnrecognizedFlagError, IllegalFlagValueError, ...
        raise GraphBuildError(_flags_error(exc)) from None
    if tuple(flags.inference_scales) != (1.0,):
        raise GraphBuildError("multi-scale inference (--inference_scales) cannot be exported to TFLite")
    crop = [int(c) for c in flags.crop_size]
    wanted = req["crop_size"] if isinstance(req["crop_size"], list) else [req["crop_size"]] * 2
    if crop != wanted:
        raise GraphBuildError(f"export flags give crop {crop}, the variant {wanted}")
    t_import = time.monotonic()

    package = None
    if req["weights"] == "tflite":
        from deeplab_nnapi.export.tflite_weights import load_package

        package = load_package(req["weights_package"])
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(req["seed"])
        image, _, _ = export_model._create_input_tensors()
        options = common.ModelOptions(
            outputs_to_num_classes={common.OUTPUT_TYPE: flags.num_classes}, crop_size=flags.crop_size,
            atrous_rates=flags.atrous_rates, output_stride=flags.output_stride)
        predictions = model.predict_labels(image, model_options=options, image_pyramid=flags.image_pyramid)
        output = predictions[common.OUTPUT_TYPE].op.name
        if output != req["output_array"]:
            raise GraphBuildError(f"the prediction is {output!r}, the variant's output array "
                                  f"{req['output_array']!r}")
        names = {op.name for op in graph.get_operations()}
        if req["input_array"].split(":")[0] not in names:
            raise GraphBuildError(f"the graph has no input array {req['input_array']!r}")
        variables = tf.compat.v1.global_variables()
        t_build = time.monotonic()
        with tf.compat.v1.Session(graph=graph) as sess:
            if req["weights"] == "checkpoint":
                try:
                    tf.compat.v1.train.Saver(variables).restore(sess, req["checkpoint"])
                except Exception as exc:  # NotFoundError (a variable missing), DataLossError, ...
                    text = " ".join(str(exc).split())
                    raise GraphBuildError(f"restoring {req['checkpoint']}: {text[:300]}") from None
            else:
                if req["weights"] == "tflite":
                    values = tflite_variable_values(graph, variables, package)
                else:
                    values = random_weight_values(variables, req["seed"])
                sess.run([v.initializer for v in variables],
                         {v.initial_value: values[v.op.name] for v in variables if v.op.name in values})
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), [output])
    t_freeze = time.monotonic()

    info: Dict[str, object] = {
        "builder": "tf2-compat", "weights": req["weights"],
        "tensorflow": tf.__version__, "tf_slim": _version("tf-slim"), "tf_keras": _version("tf-keras"),
        "variables": len(variables),
    }
    if req["weights"] == "random":
        info["seed"] = req["seed"]
    if package is not None:
        info["weights_from"] = package.source
    if req.get("float_out"):
        atomic_write(Path(req["float_out"]), frozen.SerializeToString())
        info["float_graph"] = req["float_out"]
    if req["quantization"] == "qat":
        frozen, info["qat"] = quantize(frozen, req, package)
    elif req["quantization"] == "dummy":
        frozen, info["dummy"] = quantize_dummy(frozen, req)
    t_qat = time.monotonic()
    atomic_write(Path(req["out"]), frozen.SerializeToString())
    info["seconds"] = {"import": round(t_import - t0, 2), "build": round(t_build - t_import, 2),
                       "freeze": round(t_freeze - t_build, 2), "qat": round(t_qat - t_freeze, 2)}
    return info


def tflite_variable_values(graph, variables, package) -> Dict[str, np.ndarray]:
    """Every variable's value from a weights package: the layers' folded weights and biases, the batch
    norms as the identity (:func:`deeplab_nnapi.export.tflite_weights.variable_values`)."""
    from deeplab_nnapi.export.bnfold import BATCH_NORMS
    from deeplab_nnapi.export.tflite_weights import variable_values

    epsilons = {op.name.rpartition("/")[0]: float(op.get_attr("epsilon"))
                for op in graph.get_operations() if op.type in BATCH_NORMS}
    return variable_values([(v.op.name, tuple(v.shape.as_list())) for v in variables], package, epsilons)


def quantize(frozen, req: dict, package=None):
    """Fold the batch norms and put the QAT ranges in (from ``req["checkpoint"]``, from the weights
    package's scales and zero points, or measured for random weights); return (GraphDef, info for the
    manifest)."""
    from dataclasses import replace

    from deeplab_nnapi.export import bnfold, qat
    from deeplab_nnapi.export.verify import test_image

    folded, n_folded = bnfold.fold_batch_norms(frozen, [req["output_array"]])
    points = qat.quant_points(folded, req["input_array"], req["output_array"])
    if not points:
        raise GraphBuildError("qat: no layer between the input and output arrays to quantize")
    info: Dict[str, object] = {"batch_norms_folded": n_folded, "ranges": len(points)}
    if package is not None:
        from deeplab_nnapi.export.tflite_weights import ranges_for

        ranges, narrow, inexact = ranges_for(points, package, 1.0 / float(req["std"]))
        points = [replace(p, narrow_range=narrow[p.name]) if p.name in narrow else p for p in points]
        info.update({"source": f"scales and zero points of {package.source}", "from_model": len(ranges),
                     "bias_scale_not_reproduced": inexact})
        # the ranges stay as the model has them, also where a concatenation's inputs differ
        return qat.insert_fake_quants(folded, points, ranges), info
    elif req["weights"] == "checkpoint":
        ranges, missing = qat.ranges_from_checkpoint(req["checkpoint"], points)
        if missing and not req["qat_fallback_default_ranges"]:
            raise GraphBuildError(qat.missing_message(f"checkpoint {req['checkpoint']}", missing,
                                                      len(points)))
        info.update({"source": "checkpoint", "from_checkpoint": len(ranges),
                     "default_range": [p.name for p in missing]})
    else:
        h, w = req["crop_size"] if isinstance(req["crop_size"], list) else [req["crop_size"]] * 2
        images = [(test_image(h, w, seed=req["seed"] + i).astype(np.float32) - req["mean"]) / req["std"]
                  for i in range(2)]
        ranges = qat.measure_ranges(folded, points, req["input_array"], images)
        info.update({"source": "measured on 2 synthetic images (random weights)"})
    ranges, joined = qat.share_concat_ranges(folded, points, ranges)
    if joined:
        info["shared_concat_ranges"] = joined
    return qat.insert_fake_quants(folded, points, ranges), info


def quantize_dummy(frozen, req: dict):
    """The published dummy-quantized form: the batch norms folded, then the default range on every tensor
    contrib.quantize would quantize, the (folded) weights included (full range, not narrow), as the TF 2.x
    converter of early 2020 did with ``default_ranges_stats`` (today's converter gives the weights their own
    range instead); return (GraphDef, info)."""
    from dataclasses import replace

    from deeplab_nnapi.export import bnfold, qat

    lo, hi = (float(x) for x in req.get("default_ranges") or (0.0, 6.0))
    folded, n_folded = bnfold.fold_batch_norms(frozen, [req["output_array"]])
    points = qat.quant_points(folded, req["input_array"], req["output_array"])
    if not points:
        raise GraphBuildError("dummy: no layer between the input and output arrays to quantize")
    points = [replace(p, narrow_range=False) for p in points]
    ranges = {p.name: (lo, hi) for p in points}
    return qat.insert_fake_quants(folded, points, ranges), {
        "batch_norms_folded": n_folded, "ranges": len(points), "default_range": [lo, hi],
        "weights": "default range (the published form)"}


def _version(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(f"{ERROR_PREFIX}usage: python -m deeplab_nnapi.export.deeplab_graph REQUEST.json",
              file=sys.stderr)
        return 2
    try:
        req = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        info = build(req)
        atomic_write(Path(req["info"]), (json.dumps(info, indent=2) + "\n").encode())
    except ToolError as exc:
        traceback.print_exc()
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the upstream code's own errors: the traceback stays in the log
        traceback.print_exc()
        text = " ".join(str(exc).split())[:400]
        print(f"{ERROR_PREFIX}{type(exc).__name__}: {text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
