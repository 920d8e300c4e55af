"""tools/build_image.py: build docker/Dockerfile through a Docker-compatible engine (docker SDK).

    python tools/build_image.py --output out                 # the artifacts stage, copied into out/
    python tools/build_image.py --target check               # run the offline tests inside the image
    python tools/build_image.py --output out --build-arg TF_COMMIT=<40-hex commit> --engine-url unix:///run/podman/podman.sock
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from deeplab_nnapi.container.engine import (
    ARTIFACT_PATHS,
    DEFAULT_DOCKERFILE,
    DEFAULT_TARGET,
    build,
    connect,
    export_artifacts,
    parse_build_args,
)
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.resources import checkout_root

from . import ArgumentParser, emit_json, run

PROG = "build_image"

EPILOG = """\
examples:
  %(prog)s --output out                        # everything: binaries, models, report in out/
  %(prog)s --target check                      # the offline test suite inside the image
  %(prog)s --output out --build-arg CKPT_ADE20K_TRAIN_SHA256=... --engine-url unix:///run/podman/podman.sock

The engine: --engine-url, else DOCKER_HOST, else /var/run/docker.sock or Podman's socket. With no engine
reachable the tool exits 2 with one line. Progress (the engine's build output) goes to stderr; --json prints
a summary on stdout. --output needs --target artifacts: it creates a container from the built image (never
started), copies {paths} out of it, and replaces DIR only when every file arrived.
Exit codes: 0 built, 1 the build failed, 2 bad usage or no engine.
""".replace("{paths}", ", ".join(ARTIFACT_PATHS))


def make_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default=DEFAULT_TARGET,
                   help="Dockerfile stage to build (default: %(default)s; e.g. check, toolchain, verify)")
    p.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="override a pinned input (repeatable), e.g. BASE_IMAGE=..., TF_COMMIT=...")
    p.add_argument("--output", type=Path, metavar="DIR", help="copy the artifacts out of the image into DIR")
    p.add_argument("--tag", help="name for the built image (default: deeplab-nnapi:<target>)")
    p.add_argument("--engine-url", help="engine API URL (unix:///..., tcp://host:port); default DOCKER_HOST")
    p.add_argument("--context", type=Path, default=checkout_root() or Path.cwd(),
                   help="build context (default: the clone this tool runs from, else the current directory)")
    p.add_argument("--dockerfile", default=DEFAULT_DOCKERFILE,
                   help="Dockerfile path inside the context (default: %(default)s)")
    p.add_argument("--pull", action="store_true", help="ask the engine to pull newer base images")
    p.add_argument("--quiet", action="store_true", help="do not stream the build output")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    return p


def _body(argv: Optional[Sequence[str]]) -> int:
    args = make_parser().parse_args(argv)
    build_args = parse_build_args(args.build_arg)
    if args.output is not None and args.target != "artifacts":
        raise UsageError("--output copies the artifacts stage: use it with --target artifacts")
    if not args.context.is_dir():
        raise UsageError(f"build context {args.context} is not a directory")
    if not (args.context / args.dockerfile).is_file():
        raise UsageError(f"no Dockerfile at {args.context / args.dockerfile}")
    tag = args.tag or f"deeplab-nnapi:{args.target}"

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    client = connect(args.engine_url)
    say(f"{PROG}: building target {args.target} of {args.dockerfile} as {tag}")
    result = build(client, args.context, dockerfile=args.dockerfile, target=args.target,
                   build_args=build_args, tag=tag, on_line=say, pull=args.pull)
    files = []
    if args.output is not None:
        files = export_artifacts(client, result.image_id, args.output, on_line=say)
    summary = {"target": args.target, "tag": tag, "image_id": result.image_id,
               "output": str(args.output) if args.output is not None else None,
               "files": [str(f) for f in files]}
    if args.json:
        emit_json(summary)
    else:
        copied = f"; {len(files)} files in {args.output}" if args.output is not None else ""
        print(f"{PROG}: built {tag} ({result.image_id}){copied}", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)
