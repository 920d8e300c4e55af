"""draw_pictures: segmentation overlays of models on photos, their partition diagram, and an HTML report.

Exit codes: 0 written; 2 bad usage or input (nothing is written then).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from deeplab_nnapi.errors import UsageError

from . import ArgumentParser, emit_json, run
from .check_delegation import _apis, _delegates

PROG = "draw_pictures"

DESCRIPTION = """\
Draw what DeepLab models do: each model's label map over photos (a PNG per photo, the photo's size, in the
dataset's colours with a legend of the classes present), the partition diagram of how TFLite's NNAPI delegate
splits the models, and report.html gathering both with every picture inline.

Two or more models are compared: per photo one sheet with the overlays side by side (first model left) and
the pixel agreement with the first model in the caption; the diagram puts every model beside the others.
With --separate each model gets its own overlays (OUT/<model>/) and diagram.
"""

EPILOG = """\
examples:
  draw_pictures.py deeplabv3_mnv2_pascal_513_os8_quant.tflite --out pictures/
  draw_pictures.py google.tflite fixed.tflite --out compare/ --labels original,fixed
  draw_pictures.py models/*.tflite --separate --images ~/photos --out pictures/
  draw_pictures.py model.tflite --dataset ade20k --delegate stock --android-api 29,30 --out pictures/

The dataset (palette and class names: pascal_voc_2012 21, cityscapes 19, ade20k 151) comes from --dataset,
else from the models' number of classes, else from their file names.

exit status: 0 written; 2 bad usage or a missing or unreadable model, photo or output path.
"""


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="MODEL.tflite", help="models to run and draw")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (created if needed)")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="photos (PNG/JPEG/BMP/GIF/.npy; default: the sample photos scikit-image ships)")
    p.add_argument("--dataset", metavar="NAME",
                   help="pascal_voc_2012, cityscapes or ade20k (default: guessed)")
    p.add_argument("--labels", metavar="A,B,...",
                   help="names for the models in pictures (default: file names)")
    p.add_argument("--separate", action="store_true", help="each model on its own instead of side by side")
    p.add_argument("--delegate", type=_delegates, default=["stock", "patched"], metavar="stock|patched[,...]",
                   help="delegates the diagram shows (default: stock,patched)")
    p.add_argument("--android-api", type=_apis, default=[29], metavar="N[,N...]",
                   help="Android API levels the diagram shows (default: 29)")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="benchmark_model --enable_op_profiling output: node times in the diagram")
    p.add_argument("--diagram-format", choices=("svg", "png"), default="svg", help="default: svg")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _labels(args) -> List[str]:
    if args.labels is None:
        return [Path(m).stem for m in args.models]
    labels = [x.strip() for x in args.labels.split(",")]
    if len(labels) != len(args.models) or not all(labels):
        raise UsageError(f"--labels: {len(labels)} name(s) for {len(args.models)} model(s)")
    return labels


def _body(argv: Optional[Sequence[str]]) -> int:
    args = _parser().parse_args(argv)
    from deeplab_nnapi.nnapi.delegation import DelegateOptions
    from deeplab_nnapi.nnapi.profile import load_profile
    from deeplab_nnapi.pictures.api import write_run_pictures
    from deeplab_nnapi.pictures.overlay_run import resolve_images
    from deeplab_nnapi.pictures.palettes import palette
    from deeplab_nnapi.pictures.render import matplotlib

    matplotlib()
    labels = _labels(args)
    if args.dataset:
        palette(args.dataset)  # unknown names fail before any work
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    profile = load_profile(args.profile) if args.profile else None
    photos = resolve_images(args.images)
    options = [DelegateOptions(android_api=api, delegate=d)
               for d in args.delegate for api in args.android_api]
    if not args.quiet:
        print(f"{PROG}: {len(args.models)} model(s) on {len(photos)} photo(s) -> {args.out}", file=sys.stderr)
    pics = write_run_pictures(list(zip(labels, [Path(m) for m in args.models])), args.out, images=photos,
                              dataset=args.dataset, options=options, side_by_side=not args.separate,
                              profile=profile, diagram_format=args.diagram_format,
                              title="deeplab-nnapi: " + ", ".join(labels))
    if args.json:
        emit_json(pics.to_json())
    else:
        for overlay_run in pics.overlays:
            agree = overlay_run.agreement()
            for label, a in zip(overlay_run.models[1:], agree[1:]):
                print(f"{label} vs {overlay_run.models[0]}: pixel agreement {100.0 * (a or 0.0):.2f} % "
                      f"over {len(overlay_run.images)} photo(s)")
        for path in pics.files:
            print(path)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
