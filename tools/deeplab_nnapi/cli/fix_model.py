"""fix_model: rewrite an existing .tflite so that the stock NNAPI delegate takes it whole, exactly.

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
from deeplab_nnapi.fileio import atomic_write, read_input, sha256_bytes
from deeplab_nnapi.fixer import report
from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes
from deeplab_nnapi.fixer.table import load_fix_table
from deeplab_nnapi.nnapi.rules import MAX_API, MIN_API, load_rules, version_key

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

The report lists every rewrite (the op, why the delegate refused it, what replaced it, how exact it is),
the ops left alone and why, the partitions before and after, and the agreement of OUT with IN on images
(label agreement %; max |delta| of dequantized outputs that are not labels). IN is never changed; OUT is
written atomically and only when every check passed.

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
                   help="check agreement on the images in DIR (PNG/JPEG/BMP/GIF/.npy) instead of the sample "
                   "photos scikit-image ships")
    p.add_argument("--no-agreement", action="store_true",
                   help="skip running the models (no ai-edge-litert interpreter or images needed)")
    p.add_argument("--min-agreement", type=_percent, default=99.9, metavar="PCT",
                   help="exit 1 (nothing written) when the label agreement is below PCT %% (default 99.9)")
    p.add_argument("--expect-single-partition", action="store_true",
                   help="exit 1 (nothing written) unless OUT is predicted to be one delegate partition")
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


def _body(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    src, dst = Path(args.input), Path(args.output)
    if _same_file(src, dst):
        raise UsageError(f"{dst}: OUT is IN; the input is never changed, give another path")
    if dst.is_dir():
        raise UsageError(f"{dst}: is a directory, not a file to write")
    if not dst.parent.is_dir():
        raise UsageError(f"{dst.parent}: no such directory")
    data = read_input(src, "a .tflite file")
    options = FixOptions(args.android_api, args.tf_version, args.delegate, args.approximate)
    result = fix_bytes(data, options, str(src))
    agreement = None
    if not args.no_agreement:
        from deeplab_nnapi.fixer.agreement import compare

        agreement = compare(data, result.data, _images(args.images))
    problems: List[str] = []
    if args.expect_single_partition and not result.after.single_partition:
        problems.append(f"OUT is {len(result.after.nodes)} nodes, not one delegate partition")
    label = agreement.label_percent if agreement is not None else None
    if label is not None and label < args.min_agreement:
        problems.append(f"label agreement {label:.4f} % is below {args.min_agreement} %")
    if not problems:
        try:
            atomic_write(dst, result.data)
        except OSError as exc:
            raise UsageError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    extra = {"input": str(src), "output": str(dst), "written": not problems,
             "sha256_in": sha256_bytes(data), "sha256_out": sha256_bytes(result.data),
             "size_in": len(data), "size_out": len(result.data), "problems": problems}
    if args.json:
        emit_json(report.to_json(result, agreement, extra))
    elif not args.quiet:
        for line in report.to_text(result, agreement, str(src), str(dst)):
            print(line)
        if problems:
            print(f"  not written: {'; '.join(problems)}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
