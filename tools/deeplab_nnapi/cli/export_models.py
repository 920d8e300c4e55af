"""export_models: build the DeepLab variants as verified single-partition uint8 TFLite models."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from deeplab_nnapi.errors import EXIT_FAIL, EXIT_OK, UsageError
from deeplab_nnapi.export.deeplab_graph import WEIGHTS_MODES

from . import ArgumentParser, emit_json, run

PROG = "export_models"
DEFAULT_NUM_CLASSES = 21
DEFAULT_INPUT_SIZE = 513

DESCRIPTION = """\
Export DeepLab v3 (MobileNetV2) variants to uint8 TFLite models that run as ONE NNAPI delegate partition.

Two ways in:
  --models-dir PATH   full pipeline per variant: download the checkpoint once into a cache (sha256-checked,
                      resumable), build the graph with the patched DeepLab code of PATH (must carry our
                      DeepLab patches: see tools/apply_patches.py), convert, verify, write. The graph is
                      built with this Python's TensorFlow 2.x + tf_slim (a child process; QAT ranges read
                      from the checkpoint), or, with --export-python (TF 1.15), by running PATH's
                      deeplab/export_model.py itself. --weights random skips the checkpoint.
  --from-graph FILE   convert and verify an existing frozen graph (no upstream code or checkpoint needed).

--weights-from MODEL.tflite (with --models-dir) takes the weights, biases and ranges of a quantized DeepLab v3
MobileNetV2 model (ours, the published ones, or Google's original form) instead of a checkpoint: the folded
weights go into the real graph's conv weights with the batch norms as the identity, each tensor's scale and
zero point become the QAT min/max. At the model's own crop and output stride the export is the model again
(compared tensor by tensor, in the manifest as "fidelity"); --crop-size/--output-stride export any other
size (the weights do not depend on it); --agreement compares the labels on photos with the float graph of
the same weights.

Quantization: qat variants (pascal) take their ranges from the checkpoint (or MODEL); variants from float
checkpoints (cityscapes, ade20k) are calibrated, on --calibration-images or else the sample photos.
--quantization dummy gives the published dummy-quantized form instead (unusable labels; a warning says so).

Every model is verified before it is written: the patched NNAPI delegate at Android API 29 must take it as
one partition, and it must run in ai-edge-litert on a test image giving int32 1xHxW labels in range. Models
are written atomically to --out with a manifest.json (sha256, size, specs, quantization, partitions, tool
versions). A failing variant leaves no file and does not stop the others.

Exit status: 0 all variants exported; 1 some variant failed; 2 bad usage or input.
"""

EPILOG = """\
examples:
  python tools/export_models.py --models-dir ~/src/models --out out/models --variants all
  python tools/export_models.py --models-dir ~/src/models --out out/try --variants all --weights random
  python tools/export_models.py --models-dir ~/src/models --out out \
      --variants deeplabv3_mnv2_pascal_257_os16_quant,deeplabv3_mnv2_ade20k_513_os16_quant
  python tools/export_models.py --models-dir ~/src/models --out out \
      --weights-from deeplabv3_mnv2_pascal_513_os16_quant.tflite          # the published model again
  python tools/export_models.py --models-dir ~/src/models --out out --agreement \
      --weights-from deeplabv3_mnv2_pascal_513_os16_quant.tflite --crop-size 769 --output-stride 8
  python tools/export_models.py --from-graph frozen.pb --out out --num-classes 21 --input-size 513
  python tools/export_models.py --from-graph frozen.pb --out out --overlays   # + out/pictures/report.html
"""


def _parser() -> ArgumentParser:
    from argparse import RawDescriptionHelpFormatter

    p = ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=RawDescriptionHelpFormatter)
    src = p.add_argument_group("source (one of)")
    src.add_argument("--models-dir", type=Path,
                     help="patched tensorflow/models checkout (holds research/deeplab)")
    src.add_argument("--from-graph", type=Path, metavar="FILE.pb", help="convert this frozen graph instead")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output directory (created if needed; required except with --list-variants)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.add_argument("--calibration-images", type=Path, metavar="DIR",
                   help="calibrate (variants from float checkpoints, --quantization calibrated) on these "
                        "images (PNG/JPEG/.npy) instead of the sample photos")
    pics = p.add_argument_group("pictures")
    pics.add_argument("--overlays", action="store_true",
                      help="also write OUT/pictures/: per model its partition diagram (stock beside patched "
                           "delegate, API 29) and its segmentation overlays on photos, and report.html "
                           "(needs the 'pictures' and 'images' extras)")
    pics.add_argument("--images", type=Path, metavar="DIR",
                      help="photos for --overlays and --agreement (default: the sample photos scikit-image "
                           "ships)")
    up = p.add_argument_group("--models-dir mode")
    up.add_argument("--variants", metavar="NAME,...|all",
                    help="variants to export (default: all; --list-variants shows them)")
    up.add_argument("--list-variants", action="store_true", help="list the variant table and exit")
    up.add_argument("--variant-table", type=Path, metavar="FILE", help="another variant table (TOML)")
    up.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                    help="checkpoint download cache (default: $XDG_CACHE_HOME/deeplab-nnapi/checkpoints)")
    up.add_argument("--weights", choices=[m for m in WEIGHTS_MODES if m != "tflite"],
                    help="checkpoint (default): the variant's checkpoint; random: seeded random weights, no "
                         "download (proves a variant's delegation; QAT ranges measured on synthetic images)")
    up.add_argument("--seed", type=int, metavar="N", help="seed of --weights random (default 0)")
    up.add_argument("--export-python", metavar="PY",
                    help="run deeplab/export_model.py in this Python (TF 1.15) instead of building the graph "
                         "with this Python's TF 2.x + tf_slim; default $DEEPLAB_EXPORT_PYTHON, or this "
                         "Python if its TensorFlow is 1.x")
    up.add_argument("--allow-unpinned", action="store_true",
                    help="accept checkpoints whose sha256 the table does not pin "
                         "(records what was downloaded)")
    up.add_argument("--weights-from", type=Path, metavar="MODEL.tflite",
                    help="take weights, biases and ranges from this quantized DeepLab v3 MobileNetV2 model "
                         "instead of a checkpoint (default variant: the one of MODEL's classes, crop and "
                         "stride)")
    up.add_argument("--crop-size", metavar="N|HxW",
                    help="export the variants at this input size instead (N = output_stride * k + 1, e.g. "
                         "321, 769, 1025x2049)")
    up.add_argument("--output-stride", type=int, choices=(8, 16), help="export the variants at this stride")
    up.add_argument("--agreement", action="store_true",
                    help="with --weights-from: label agreement on photos (--images, default the sample "
                         "photos) with the float graph of the same weights in TensorFlow, and with MODEL at "
                         "its size")
    fg = p.add_argument_group("--from-graph mode")
    fg.add_argument("--name", help="model name (default: the graph file's stem)")
    p.add_argument("--quantization", choices=("qat", "dummy", "calibrated"),
                   help="--models-dir: default the variant's (qat for pascal: the checkpoint's or MODEL's "
                        "ranges; calibrated for cityscapes/ade20k); dummy: the published dummy form (every "
                        "tensor at (0, 6), weights included: unusable labels). --from-graph: default qat if "
                        "the graph has FakeQuant nodes, calibrated with --calibration-images, else dummy")
    fg.add_argument("--num-classes", type=int, metavar="N",
                    help=f"number of classes (default {DEFAULT_NUM_CLASSES})")
    fg.add_argument("--input-size", type=int, metavar="H",
                    help=f"input height = width (default {DEFAULT_INPUT_SIZE})")
    fg.add_argument("--input-array", metavar="NAME", help="input node (default: the table's, "
                    "MobilenetV2/MobilenetV2/input)")
    fg.add_argument("--output-array", metavar="NAME", help="output node (default ArgMax)")
    return p


def _summary(outcomes, json_out: bool, pictures=None, seconds: Optional[float] = None) -> None:
    if json_out:
        result = {"ok": all(o.ok for o in outcomes), "variants": [o.to_json() for o in outcomes]}
        if seconds is not None:
            result["seconds"] = round(seconds, 3)
        if pictures is not None:
            result["pictures"] = pictures.to_json()
        emit_json(result)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="export summary")
    for col in ("variant", "result", "quantization", "partitions", "size", "time (s)", "detail"):
        t.add_column(col)
    for o in outcomes:
        if o.ok:
            q = o.entry["quantization"]["mode"]
            d = o.entry["delegation"]
            t.add_row(escape(o.name), "[green]ok[/green]", q, str(d["delegate_partitions"]),
                      str(o.entry["size"]), f"{o.seconds:.1f}", escape(str(o.path)))
        else:
            short = o.error if len(o.error) <= 60 else o.error[:57] + "..."
            t.add_row(escape(o.name), "[red]failed[/red]", "", "", "", f"{o.seconds:.1f}",
                      escape(f"{o.stage}: {short}"))
    console = Console()
    console.print(t)
    failed = [o for o in outcomes if not o.ok]
    # full paths and errors, unwrapped (the table truncates them to the terminal width)
    for o in outcomes:
        if o.ok:
            console.print(f"{escape(o.name)}: {escape(str(o.path))}", highlight=False, soft_wrap=True)
    for o in failed:
        console.print(f"[red]{escape(o.name)}[/red] failed at {o.stage}: {escape(o.error)}", highlight=False,
                      soft_wrap=True)
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    console.print(f"{len(outcomes) - len(failed)} of {len(outcomes)} variant(s) exported{took}",
                  highlight=False)
    if pictures is not None and pictures.report is not None:
        console.print(f"pictures: {escape(str(pictures.report))} ({len(pictures.files)} files)",
                      highlight=False, soft_wrap=True)


def _check_pictures_args(args) -> None:
    """--overlays: everything it needs is there before any export work (else exit 2)."""
    if args.images is not None and not (args.overlays or args.agreement):
        raise UsageError("--images applies only with --overlays or --agreement")
    if not args.overlays:
        return
    from deeplab_nnapi.images import load_images, sample_images
    from deeplab_nnapi.pictures.render import matplotlib

    matplotlib()
    if args.images is not None:
        load_images(args.images)
    else:
        sample_images(["astronaut"])


def _pictures(args, outcomes):
    """Diagrams, overlays and report of the exported models in OUT/pictures (None without --overlays)."""
    done = [o for o in outcomes if o.ok]
    if not args.overlays or not done:
        return None
    from deeplab_nnapi.pictures.api import write_run_pictures

    if not args.quiet:
        print(f"{PROG}: drawing partition diagrams and overlays of {len(done)} model(s)", file=sys.stderr)
    return write_run_pictures([(o.name, o.path) for o in done], args.out / "pictures", images=args.images,
                              dataset={o.name: o.entry.get("dataset") for o in done}, side_by_side=False,
                              title=f"deeplab-nnapi export: {len(done)} model(s)")


def _body(argv: Optional[Sequence[str]]) -> int:
    started = time.monotonic()
    args = _parser().parse_args(argv)
    from deeplab_nnapi.export import pipeline as ex
    from deeplab_nnapi.export.variants import load_converter_defaults, load_variants, select

    variants = load_variants(args.variant_table)
    if args.list_variants:
        rows = [{"name": v.name, "dataset": v.dataset, "num_classes": v.num_classes, "crop_size": v.crop_size,
                 "output_stride": v.output_stride, "quantization": v.quantization,
                 "checkpoint": v.checkpoint.name if v.checkpoint else None,
                 "checkpoint_pinned": bool(v.checkpoint and v.checkpoint.pinned)} for v in variants.values()]
        if args.json:
            emit_json(rows)
        else:
            for r in rows:
                size = f"{r['crop_size']}x{r['crop_size']}"
                print(f"{r['name']:44} {r['dataset']:16} {r['num_classes']:4} {size:8} "
                      f"os{r['output_stride']:<3} {r['quantization']}")
        return EXIT_OK
    if (args.models_dir is None) == (args.from_graph is None):
        raise UsageError("give exactly one of --models-dir PATH or --from-graph FILE.pb")
    if args.out is None:
        raise UsageError("--out DIR is required")
    only = {"--models-dir": ("variants", "checkpoint_dir", "export_python", "allow_unpinned", "weights",
                             "seed", "weights_from", "crop_size", "output_stride", "agreement"),
            "--from-graph": ("name", "input_array", "output_array", "num_classes", "input_size")}
    mode = "--models-dir" if args.models_dir is not None else "--from-graph"
    for other, names in only.items():
        if other != mode:
            for n in names:
                if getattr(args, n) not in (None, False):
                    raise UsageError(f"--{n.replace('_', '-')} applies only with {other}")
    _check_dir_option("--out", args.out)
    _check_pictures_args(args)
    if args.checkpoint_dir is not None:
        _check_dir_option("--checkpoint-dir", args.checkpoint_dir)
    if args.calibration_images is not None:
        if not args.calibration_images.is_dir():
            raise UsageError(f"--calibration-images {args.calibration_images}: not a directory")
        from deeplab_nnapi.export.convert import load_calibration_images

        # every image is read once here, so a bad one is bad input (exit 2) before any work
        load_calibration_images(args.calibration_images, (8, 8))

    if args.from_graph is not None:
        chosen = _from_graph_variant(args, load_converter_defaults(args.variant_table))
        provider = ex.file_graph_provider(args.from_graph)
        versions = ex.tool_versions()
    else:
        source = None
        if args.weights_from is not None:
            source = _weights_from_source(args)
            chosen = _weights_from_variants(variants, args.variants, source)
        else:
            if args.agreement:
                raise UsageError("--agreement applies only with --weights-from")
            chosen = select(variants, args.variants)  # unknown names: exit 2 before any work
        if args.crop_size is not None or args.output_stride is not None:
            from deeplab_nnapi.export.variants import parse_crop

            crop = parse_crop(args.crop_size) if args.crop_size is not None else None
            chosen = [v.resized(crop, args.output_stride) for v in chosen]
        ex.check_models_dir(args.models_dir)
        chosen = _quantization(chosen, args, source)
        weights = args.weights or "checkpoint"
        if source is not None:
            for n in ("weights", "seed", "export_python", "checkpoint_dir", "allow_unpinned"):
                if getattr(args, n) not in (None, False):
                    raise UsageError(f"--{n.replace('_', '-')} does not apply with --weights-from")
            ex.check_tf2_builder()
            if args.agreement or any(v.quantization == "calibrated" for v in chosen):
                _check_photos(args)
            rep = ex.Reporter(len(chosen), enabled=not args.quiet)
            _warn_dummy(chosen, args)
            provider = ex.weights_from_provider(args.models_dir, source, agreement=args.agreement,
                                                images=args.images, stage=rep.stage)
            outcomes = ex.run(chosen, args.out, provider, calibration_images=args.calibration_images,
                              versions=ex.tool_versions(builder=ex.TF2_BUILDER), reporter=rep)
            took = time.monotonic() - started
            _summary(outcomes, args.json, _pictures(args, outcomes), took)
            return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAIL
        if any(v.quantization == "calibrated" for v in chosen) and args.calibration_images is None:
            _check_photos(args)
        if args.seed is not None and weights != "random":
            raise UsageError("--seed applies only with --weights random")
        export_python = args.export_python or ex.default_export_python()
        from deeplab_nnapi.export.download import default_cache_dir

        ckdir = args.checkpoint_dir or default_cache_dir()
        rep = ex.Reporter(len(chosen), enabled=not args.quiet)
        if export_python is not None:
            if weights == "random":
                raise UsageError("--weights random needs the TF 2.x graph builder, not export_model.py "
                                 "(drop --export-python / unset DEEPLAB_EXPORT_PYTHON)")
            versions = ex.tool_versions(ex.export_python_tf_version(export_python))
            provider = ex.upstream_graph_provider(args.models_dir, ckdir, export_python,
                                                  allow_unpinned=args.allow_unpinned, progress=not args.quiet,
                                                  stage=rep.stage)
        else:
            ex.check_tf2_builder()
            versions = ex.tool_versions(builder=ex.TF2_BUILDER)
            provider = ex.tf2_graph_provider(args.models_dir, ckdir, weights=weights, seed=args.seed or 0,
                                             allow_unpinned=args.allow_unpinned, progress=not args.quiet,
                                             stage=rep.stage)
        _warn_dummy(chosen, args)
        outcomes = ex.run(chosen, args.out, provider, calibration_images=args.calibration_images,
                          versions=versions, reporter=rep)
        took = time.monotonic() - started
        _summary(outcomes, args.json, _pictures(args, outcomes), took)
        return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAIL

    outcomes = ex.run(chosen, args.out, provider, calibration_images=args.calibration_images,
                      progress=not args.quiet, versions=versions)
    took = time.monotonic() - started
    _summary(outcomes, args.json, _pictures(args, outcomes), took)
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAIL


def _weights_from_source(args):
    """The model of --weights-from, read and checked (exit 2 naming the first tensor that does not fit)."""
    from deeplab_nnapi.export.tflite_weights import read_source

    path = args.weights_from
    if path.is_dir():
        raise UsageError(f"--weights-from {path}: is a directory, not a .tflite model")
    return read_source(path)


def _weights_from_variants(variants, spec: Optional[str], source) -> List:
    """--variants with --weights-from: the named variants (their classes must be the model's); without
    --variants, the table's variant of the model's classes, crop and stride (or one of its classes at the
    model's crop and stride)."""
    from deeplab_nnapi.export.variants import select

    logits = source.layers["logits/semantic"].weights_tensor
    if spec is not None:
        chosen = select(variants, spec)
        for v in chosen:
            if v.num_classes != source.num_classes:
                raise UsageError(f"--weights-from {source.path}: tensor {logits!r} gives "
                                 f"{source.num_classes} classes; variant {v.name} has {v.num_classes}")
        return chosen
    same = [v for v in variants.values() if v.num_classes == source.num_classes]
    if not same:
        raise UsageError(f"--weights-from {source.path}: no variant in the table has {source.num_classes} "
                         f"classes (tensor {logits!r}); name one with --variants")
    for v in same:
        if tuple(v.crop) == tuple(source.input_size) and v.output_stride == source.output_stride:
            return [v]
    return [same[0].resized(tuple(source.input_size), source.output_stride)]


DUMMY_WARNING = ("dummy quantization gives the published dummy-quantized form: every tensor, the weights "
                 "included, gets the range ({lo:g}, {hi:g}); negative weights and activations become 0 and "
                 "every linear bottleneck is clipped, so the labels are unusable (the published cityscapes "
                 "and ade20k models give one class for every pixel). Leave --quantization out for a "
                 "calibrated model.")


def _quantization(chosen: List, args, source) -> List:
    """The quantization mode of each variant: --quantization, else the table's (a dummy variant is
    calibrated when --calibration-images is given). qat needs ranges: a quantization-aware checkpoint,
    --weights-from, or --weights random (measured)."""
    out = []
    for v in chosen:
        mode = args.quantization or v.quantization
        if args.quantization is None and v.quantization == "dummy" and args.calibration_images is not None:
            mode = "calibrated"
        if (mode == "qat" and source is None and (args.weights or "checkpoint") == "checkpoint"
                and not (v.checkpoint and v.checkpoint.quantization_aware)):
            raise UsageError(f"--quantization qat: variant {v.name} has a float checkpoint (no ranges); "
                             "use calibrated or dummy")
        out.append(v.with_quantization(mode))
    return out


def _warn_dummy(chosen: List, args) -> None:
    """Say what dummy quantization does (on stderr, before the work starts)."""
    dummy = [v for v in chosen if v.quantization == "dummy"]
    if dummy and not args.quiet:
        lo, hi = dummy[0].converter.default_ranges
        print(f"{PROG}: warning: {DUMMY_WARNING.format(lo=lo, hi=hi)}", file=sys.stderr)


def _check_photos(args) -> None:
    """The photos for calibration or --agreement can be read (exit 2 before any work)."""
    from deeplab_nnapi.images import load_images, sample_images

    if args.images is not None:
        load_images(args.images)
    else:
        sample_images(["astronaut"])


def _from_graph_variant(args, defaults) -> List:
    from dataclasses import replace

    from deeplab_nnapi.export.convert import check_arrays, read_graph_def
    from deeplab_nnapi.export.variants import ad_hoc_variant

    graph = args.from_graph
    if graph.is_dir():
        raise UsageError(f"--from-graph {graph}: is a directory, not a frozen graph file")
    if not graph.is_file():
        raise UsageError(f"--from-graph {graph}: no such file")
    conv = defaults
    if args.input_array:
        conv = replace(conv, input_array=args.input_array)
    if args.output_array:
        conv = replace(conv, output_array=args.output_array)
    # a graph that cannot be read, or lacks the arrays, is bad input (exit 2), not a failed variant
    gd = read_graph_def(graph)
    check_arrays(gd, conv.input_array, conv.output_array)
    quant = args.quantization
    if quant is None:
        if any(n.op.startswith("FakeQuant") for n in gd.node):
            quant = "qat"
        else:
            quant = "calibrated" if args.calibration_images is not None else "dummy"
    if quant == "calibrated" and args.calibration_images is None:
        raise UsageError("--quantization calibrated needs --calibration-images DIR")
    name = args.name or graph.name.rsplit(".", 1)[0]
    num_classes = DEFAULT_NUM_CLASSES if args.num_classes is None else args.num_classes
    input_size = DEFAULT_INPUT_SIZE if args.input_size is None else args.input_size
    return [ad_hoc_variant(name, num_classes, input_size, quant, conv)]


def _check_dir_option(option: str, path: Path) -> None:
    """A directory option must name a directory or a path that can be created as one."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{option} {path}: {parent} is not a directory")
            break


def main(argv: Optional[Sequence[str]] = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(PROG, _body, argv)
