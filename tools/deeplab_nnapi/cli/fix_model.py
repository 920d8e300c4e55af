"""fix_model: rewrite an existing .tflite so that the stock NNAPI delegate takes it whole, exactly.

With --overlays, the pictures of IN beside OUT go to ``<OUT's stem>.pictures/`` next to OUT, written with it
(all or nothing) from the label maps of the agreement run.

Exit codes: 0 written; 1 a check asked for does not hold (--expect-single-partition, --min-agreement), nothing
written; 2 bad usage or input (not a TFLite model, an unknown op version, a graph a rule cannot match, a
resize with no exact rewrite and no --approximate), nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.fileio import read_input, sha256_bytes
from deeplab_nnapi.fixer import report
from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes
from deeplab_nnapi.fixer.table import load_fix_table
from deeplab_nnapi.nnapi.rules import MAX_API, MIN_API, load_rules, version_key
from deeplab_nnapi.pictures.writing import write_files

from . import ArgumentParser, emit_json, run

PROG = "fix_model"

EPILOG = """\
rewrites (each only where the delegation predictor refuses the op and accepts what replaces it):
{rules}

examples:
  fix_model.py google_deeplab.tflite fixed.tflite         # stock delegate, API 29, newest TF rules
  fix_model.py in.tflite out.tflite --android-api 29 --tf-version 2.15 --json
  fix_model.py in.tflite out.tflite --images ~/photos                 # agreement on your own images
  fix_model.py in.tflite out.tflite --approximate                     # allow resizes with no exact rewrite
  fix_model.py in.tflite out/fixed.tflite --overlays            # + out/fixed.pictures/report.html

The report lists every rewrite (the op, why the delegate refused it, what replaced it, how exact it is),
the ops left alone and why, the partitions before and after, and the agreement of OUT with IN on images
(label agreement %; max |delta| of dequantized outputs that are not labels). IN is never changed; OUT is
written atomically and only when every check passed.

--overlays writes OUT's pictures beside it, in <OUT's stem>.pictures/ (fixed.tflite -> fixed.pictures/):
  partitions.svg                   IN ("original") beside OUT ("fixed") as the delegate sees them, with the
                                   --delegate, --android-api and --tf-version of the fix
  <image>.original_vs_fixed.png    per image, IN's and OUT's segmentation overlays side by side at the
                                   image's size, their pixel agreement in the caption
  report.html                      one file, every picture inline: the above, the agreement check's figure,
                                   the rewrites
The overlays are drawn from the label maps the agreement check computed (the models are not run again).
They are written with OUT, all or nothing, and only when OUT is.

exit status: 0 written; 1 a check (--expect-single-partition, --min-agreement) failed, nothing written;
2 bad usage or input, nothing written.
"""


def _api(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not MIN_API <= value <= MAX_API:
        raise argparse.ArgumentTypeError(f"{value} is outside {MIN_API}..{MAX_API}")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError("must be within 0..100")
    return value


def build_parser() -> argparse.ArgumentParser:
    rules = load_rules()
    releases = sorted(rules.releases, key=version_key)
    table = load_fix_table()
    listing = "\n".join(f"  {name}: {rule.what}" for name, rule in table.rules.items())
    p = ArgumentParser(
        prog=PROG,
        description="Rewrite a .tflite model so that TFLite's stock NNAPI delegate takes it as one "
        "partition, using only exact equivalences (no checkpoint, no TensorFlow needed).",
        epilog=EPILOG.format(rules=listing),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN.tflite", help="the model to fix (never changed)")
    p.add_argument("output", metavar="OUT.tflite", help="where the fixed model goes (written atomically)")
    p.add_argument("--android-api", type=_api, default=29, metavar="N",
                   help=f"Android API level of the target devices ({MIN_API}..{MAX_API}). Default: 29")
    p.add_argument("--tf-version", metavar="2.N", default=None,
                   help=f"TF release whose delegate rules apply ({releases[0]}..{releases[-1]}). "
                   f"Default: {rules.newest_release}")
    p.add_argument("--delegate", choices=("stock", "patched"), default="stock",
                   help="the delegate the fixed model is for. Default: stock")
    p.add_argument("--approximate", action="store_true",
                   help="allow rewrites that are not exact (a resize whose m' is not whole becomes "
                   "align_corners=False alone); the report says how far off")
    p.add_argument("--images", type=Path, metavar="DIR", default=None,
                   help="check agreement (and draw --overlays) on the images in DIR (PNG/JPEG/BMP/GIF/.npy) "
                   "instead of the sample photos scikit-image ships")
    p.add_argument("--no-agreement", action="store_true",
                   help="skip running the models (no ai-edge-litert interpreter or images needed)")
    p.add_argument("--min-agreement", type=_percent, default=99.9, metavar="PCT",
                   help="exit 1 (nothing written) when the label agreement is below PCT %% (default 99.9)")
    p.add_argument("--expect-single-partition", action="store_true",
                   help="exit 1 (nothing written) unless OUT is predicted to be one delegate partition")
    p.add_argument("--overlays", action="store_true",
                   help="also write pictures of IN and OUT next to OUT, in <OUT stem>.pictures/: partition "
                   "diagram, overlays per image with the pixel agreement, report.html (see below; needs the "
                   "'pictures' extra; not with --no-agreement)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no report on stderr/stdout, only errors")
    return p


def _images(directory: Optional[Path]):
    from deeplab_nnapi.images import load_images, sample_images

    return load_images(directory) if directory is not None else sample_images()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


def pictures_dir(output: Path) -> Path:
    """Where --overlays writes: ``<OUT's directory>/<OUT's stem>.pictures``."""
    return output.parent / f"{output.stem}.pictures"


def _check_overlays(args, dst: Path) -> Optional[Path]:
    """--overlays: everything it needs is there before any work (else exit 2). Returns the directory."""
    if not args.overlays:
        return None
    if args.no_agreement:
        raise UsageError("--overlays draws the label maps of the agreement run; it cannot go with "
                         "--no-agreement")
    out = pictures_dir(dst)
    if _same_file(out, dst):
        raise UsageError(f"{dst}: --overlays would write its pictures to OUT itself; give OUT another name")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory (--overlays writes its pictures there)")
    from deeplab_nnapi.pictures.render import matplotlib

    matplotlib()
    return out


def _agreement_line(agreement) -> str:
    parts = []
    for o in agreement.outputs:
        if o.kind == "labels":
            parts.append(f"output {o.index} '{o.name}': label agreement {o.percent:.4f} % "
                         f"({o.equal}/{o.elements} pixels of the model's output, padding included)")
        else:
            parts.append(f"output {o.index} '{o.name}': max |delta| {o.max_abs_diff:.6g} (dequantized)")
    return (f"Agreement check (what --min-agreement gates) on {len(agreement.images)} images: "
            + "; ".join(parts) + ". The overlays' pixel agreement is counted on each image at its own size.")


def _draw_pictures(out: Path, src: Path, dst: Path, data: bytes, result, agreement, images):
    """IN beside OUT, rendered in memory (``pending``), from the label maps of the agreement run."""
    from deeplab_nnapi.pictures.api import draw_run_pictures

    opts = result.options.delegate_options()
    maps = [m.at_photo_size() for m in agreement.label_maps] or None  # None: no label output, models run
    intro = [f"original = {src.name} (IN), fixed = {dst.name} (OUT); {opts.delegate} delegate, "
             f"TF {result.before.tf_version} rules, Android API {opts.android_api}: "
             f"{len(result.before.nodes)} -> {len(result.after.nodes)} nodes.", _agreement_line(agreement)]
    notes = [f"rewrite op {r.op} {r.op_type}: {r.replacement} ({r.exactness})" for r in result.rewrites]
    notes += [f"not rewritten: op {s.op} {s.op_type}: {s.why}" for s in result.skipped]
    return draw_run_pictures([("original", data), ("fixed", result.data)], out, images=images,
                             options=(opts,), title=f"fix_model: {src.name} -> {dst.name}", intro=intro,
                             notes=notes, label_maps=maps)


def _body(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    src, dst = Path(args.input), Path(args.output)
    if _same_file(src, dst):
        raise UsageError(f"{dst}: OUT is IN; the input is never changed, give another path")
    if dst.is_dir():
        raise UsageError(f"{dst}: is a directory, not a file to write")
    if not dst.parent.is_dir():
        raise UsageError(f"{dst.parent}: no such directory")
    out_pictures = _check_overlays(args, dst)
    data = read_input(src, "a .tflite file")
    images = None if args.no_agreement else _images(args.images)
    options = FixOptions(args.android_api, args.tf_version, args.delegate, args.approximate)
    result = fix_bytes(data, options, str(src))
    agreement = None
    if images is not None:
        from deeplab_nnapi.fixer.agreement import compare

        agreement = compare(data, result.data, images, keep_labels=out_pictures is not None)
    problems: List[str] = []
    if args.expect_single_partition and not result.after.single_partition:
        problems.append(f"OUT is {len(result.after.nodes)} nodes, not one delegate partition")
    label = agreement.label_percent if agreement is not None else None
    if label is not None and label < args.min_agreement:
        problems.append(f"label agreement {label:.4f} % is below {args.min_agreement} %")
    pictures = None
    if not problems:
        if out_pictures is not None:
            if not args.quiet:
                print(f"{PROG}: drawing the pictures of IN and OUT into {out_pictures}", file=sys.stderr)
            pictures = _draw_pictures(out_pictures, src, dst, data, result, agreement, images)
        write_files([(dst, result.data), *(pictures.pending if pictures else [])], fsync=True)
    extra = {"input": str(src), "output": str(dst), "written": not problems,
             "sha256_in": sha256_bytes(data), "sha256_out": sha256_bytes(result.data),
             "size_in": len(data), "size_out": len(result.data), "problems": problems,
             "pictures": pictures.to_json() if pictures else None}
    if args.json:
        emit_json(report.to_json(result, agreement, extra))
    elif not args.quiet:
        for line in report.to_text(result, agreement, str(src), str(dst)):
            print(line)
        if pictures is not None:
            print(f"  pictures: {pictures.report} ({len(pictures.files)} files)")
        if problems:
            print(f"  not written: {'; '.join(problems)}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
