"""Command-line front ends. Shared plumbing: one-line errors, exit codes, --json output, --version, and the
table of commands (:data:`COMMANDS`, what ``python -m deeplab_nnapi`` lists)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional, Sequence

from deeplab_nnapi import __version__
from deeplab_nnapi.errors import EXIT_USAGE, ToolError

#: Every command: (console script or None, module under deeplab_nnapi.cli, one line). pyproject.toml's
#: [project.scripts] lists the same scripts (tests/docs/test_docs_cli.py checks it); every module also has a
#: wrapper, tools/<module>.py, for running from a clone.
COMMANDS = (
    ("deeplab-apply-patches", "apply_patches",
     "apply, check or reverse the patch set on TF/LiteRT/models trees"),
    ("deeplab-check-delegation", "check_delegation",
     "predict a .tflite's NNAPI partitions; read a phone's profile"),
    ("deeplab-fix-model", "fix_model",
     "rewrite a .tflite so that the stock delegate takes it as one partition"),
    ("deeplab-export-models", "export_models",
     "export the DeepLab variants as verified one-partition models"),
    ("deeplab-compare-models", "compare_models",
     "two .tflite models tensor by tensor: ops, shapes, quantization, values, labels"),
    ("deeplab-draw-pictures", "draw_pictures", "segmentation overlays, partition diagrams, an HTML report"),
    ("deeplab-probe-delegation", "probe_delegation",
     "build a TF/LiteRT tree's real NNAPI delegate on the host and probe models with it"),
    ("deeplab-build-image", "build_image",
     "build docker/Dockerfile with a Docker-compatible engine or buildah"),
    (None, "generate_model_patches", "(maintainers) regenerate patches/models/ from its rule"),
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2) instead of usage + error, and ``--version``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"%(prog)s (deeplab-nnapi) {__version__}",
                          help="print the version and exit")

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run(
    prog: str,
    body: Callable[[Optional[Sequence[str]]], int],
    argv: Optional[Sequence[str]] = None,
) -> int:
    """Run a CLI body; turn ToolError/OSError into one line on stderr and the right exit code."""
    try:
        return int(body(argv) or 0)
    except ToolError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # what no layer below turned into a ToolError: still one line, exit 2
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
