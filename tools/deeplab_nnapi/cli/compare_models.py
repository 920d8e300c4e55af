"""compare_models: a DeepLab .tflite beside a reference, tensor by tensor (the fidelity of an export)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from deeplab_nnapi.errors import EXIT_FAIL, EXIT_OK, UsageError

from . import ArgumentParser, emit_json, run

PROG = "compare_models"

DESCRIPTION = """\
Compare a DeepLab v3 MobileNetV2 .tflite with a reference model tensor by tensor: the op sequence, every
tensor's type, shape, scale (float32, bit for bit) and zero point, and for weights, biases and other
constants how many values differ. Ops are paired by their place in the graph (a conv by its DeepLab layer
scope, the other ops by type and inputs), so another op order or other tensor names do not hide a tensor.
With --labels both models also run on photos (ai-edge-litert, reference kernels) and the share of equal
labels is reported (both models must take the same input size).

Exit status: 0 identical (same op sequence and options, every tensor equal, and with --labels every label
equal); 1 something differs; 2 bad usage or an unreadable model.
"""

EPILOG = """\
examples:
  python tools/compare_models.py out/deeplabv3_mnv2_pascal_513_os16_quant.tflite \\
      ../shared/reference/models/deeplabv3_mnv2_pascal_513_os16_quant.tflite
  python tools/compare_models.py MODEL REFERENCE --tensors all --labels --json
"""


def _parser() -> ArgumentParser:
    from argparse import RawDescriptionHelpFormatter

    p = ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the model to check (e.g. an export)")
    p.add_argument("reference", type=Path, help="the reference model (e.g. the published one)")
    p.add_argument("--tensors", choices=("differing", "all", "none"), default="differing",
                   help="which tensors to list one by one (default: those that differ)")
    p.add_argument("--labels", action="store_true",
                   help="also run both models on photos and report the share of equal labels")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="photos for --labels (default: the sample photos scikit-image ships)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")
    return p


def _body(argv: Optional[Sequence[str]]) -> int:
    args = _parser().parse_args(argv)
    from deeplab_nnapi.export.compare import format_fidelity, tensor_fidelity
    from deeplab_nnapi.fileio import read_input

    if args.images is not None and not args.labels:
        raise UsageError("--images applies only with --labels")
    model = read_input(args.model, "a .tflite model")
    reference = read_input(args.reference, "a .tflite model")
    f = tensor_fidelity(model, reference, model_label=args.model.name, reference_label=args.reference.name)
    if args.labels:
        from deeplab_nnapi.export.agreement import agreement, model_labels, photo_inputs
        from deeplab_nnapi.nnapi.tflite_model import load_model

        shapes = [tuple(m.tensor(m.inputs[0]).shape) for m in (load_model(model), load_model(reference))]
        if shapes[0] != shapes[1]:
            raise UsageError(f"--labels needs the same input size; the models take {list(shapes[0])} and "
                             f"{list(shapes[1])}")
        photos = photo_inputs(shapes[0][1:3], args.images)
        names, inputs = [n for n, _ in photos], [x for _, x in photos]
        f.labels = agreement(f"reference {args.reference.name}", names, model_labels(model, inputs),
                             model_labels(reference, inputs)).to_json()
    same = f.identical and (f.labels is None or f.labels["agreement_percent"] == 100.0)
    if args.json:
        emit_json({**f.to_json(per_tensor=args.tensors != "none"), "same": same}
                  if args.tensors != "differing" else
                  {**f.to_json(per_tensor=False), "same": same,
                   "tensors": [t.to_json() for t in f.tensors if not t.equal]})
    else:
        shown = {"differing": True, "all": "all", "none": False}[args.tensors]
        print(format_fidelity(f, per_tensor=shown))
    return EXIT_OK if same else EXIT_FAIL


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
