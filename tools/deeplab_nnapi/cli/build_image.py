"""tools/build_image.py: build docker/Dockerfile through a Docker-compatible engine (docker SDK) or buildah.

    python tools/build_image.py --output out                 # the artifacts stage, copied into out/
    python tools/build_image.py --target check               # run the offline tests inside the image
    python tools/build_image.py --target proof --output out --tf-dir ~/src/LiteRT --models-dir ~/src/models
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from deeplab_nnapi.container import buildah as buildah_engine
from deeplab_nnapi.container.context import LocalDirs, make_context
from deeplab_nnapi.container.engine import (
    DEFAULT_DOCKERFILE,
    DEFAULT_TARGET,
    ENGINES,
    OUTPUT_PATHS,
    build,
    choose_engine,
    export_artifacts,
    parse_build_args,
)
from deeplab_nnapi.container.stages import StageTimer
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.resources import checkout_root

from . import ArgumentParser, emit_json, run

PROG = "build_image"

EPILOG = """\
examples:
  %(prog)s --output out                        # everything: binaries, models, report in out/
  %(prog)s --target check                      # the offline test suite inside the image
  %(prog)s --target proof --output out --tf-dir ~/src/LiteRT --models-dir ~/src/models
                                               # a vendor's tree: models, probe and report, no toolchain
  %(prog)s --output out --build-arg WEIGHTS=checkpoint --build-arg CKPT_ADE20K_TRAIN_SHA256=... ...

The engine (--engine auto): a Docker-compatible engine when one answers (--engine-url, else DOCKER_HOST,
else /var/run/docker.sock or Podman's socket), else buildah when it is installed (daemonless; STORAGE_DRIVER
becomes --storage-driver, BUILDAH_ISOLATION is buildah's, default isolation chroot), else one line saying
how to get either (exit 2). --tf-dir, --models-dir and --weights-dir put local directories into a temporary
build context (hard links where possible, never .git; the build patches its own copy) and set TF_DIR,
MODELS_DIR, WEIGHTS_DIR and, for a git checkout, its commit. Progress (the engine's build output) goes to
stderr, then the seconds per stage; --json prints a summary on stdout. --output works with the targets
{targets}: DIR is replaced only when every file arrived.
Exit codes: 0 built, 1 the build failed, 2 bad usage or no engine.
""".replace("{targets}", " and ".join(OUTPUT_PATHS))


def make_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default=DEFAULT_TARGET,
                   help="Dockerfile stage to build (default: %(default)s; e.g. check, proof, verify)")
    p.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="override a pinned input (repeatable), e.g. BASE_IMAGE=..., TF_COMMIT=...")
    p.add_argument("--output", type=Path, metavar="DIR",
                   help="copy the target's files out of the image into DIR")
    p.add_argument("--tf-dir", type=Path, metavar="DIR",
                   help="build from this TensorFlow 2.x or LiteRT tree instead of cloning TF_COMMIT")
    p.add_argument("--models-dir", type=Path, metavar="DIR",
                   help="build from this tensorflow/models tree instead of cloning MODELS_COMMIT")
    p.add_argument("--weights-dir", type=Path, metavar="DIR",
                   help="the eight published models from this directory instead of downloading them "
                        "(each still checked by its pinned sha256)")
    p.add_argument("--tag", help="name for the built image (default: deeplab-nnapi:<target>)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto (default): a Docker-compatible engine if one answers, else buildah")
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
    if args.output is not None and args.target not in OUTPUT_PATHS:
        raise UsageError(f"--output copies the {' or '.join(OUTPUT_PATHS)} stage: use it with --target "
                         f"{' or --target '.join(OUTPUT_PATHS)}")
    if not args.context.is_dir():
        raise UsageError(f"build context {args.context} is not a directory")
    if not (args.context / args.dockerfile).is_file():
        raise UsageError(f"no Dockerfile at {args.context / args.dockerfile}")
    if args.engine_url and args.engine == "buildah":
        raise UsageError("--engine-url names a Docker-compatible engine: not with --engine buildah")
    tag = args.tag or f"deeplab-nnapi:{args.target}"
    dirs = LocalDirs(args.tf_dir, args.models_dir, args.weights_dir)
    from deeplab_nnapi.container.context import check_dirs

    check_dirs(dirs)  # bad directories are usage errors, before any engine is contacted
    timer = StageTimer()

    def say(line: str) -> None:
        timer.feed(line)
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    engine = choose_engine(args.engine, args.engine_url)
    started = time.monotonic()
    with make_context(args.context, dirs, given=build_args) as ctx:
        build_args = {**build_args, **ctx.build_args}
        say(f"{PROG}: building target {args.target} of {args.dockerfile} as {tag} with {engine.kind}"
            + (f" (context {ctx.path}: {', '.join(f'{k}={v}' for k, v in ctx.build_args.items())})"
               if ctx.temporary else ""))
        try:
            if engine.kind == "buildah":
                result = buildah_engine.build(engine.exe, ctx.path, dockerfile=args.dockerfile,
                                              target=args.target, build_args=build_args, tag=tag,
                                              output=args.output, pull=args.pull, on_line=say)
                files = result.files
            else:
                result = build(engine.client, ctx.path, dockerfile=args.dockerfile, target=args.target,
                               build_args=build_args, tag=tag, on_line=say, pull=args.pull)
                files = []
                if args.output is not None:
                    files = export_artifacts(engine.client, result.image_id, args.output,
                                             paths=OUTPUT_PATHS[args.target], on_line=say)
        finally:
            timer.finish()
            if not args.quiet and timer.table():
                print(f"{PROG}: seconds per stage ({engine.kind}):", file=sys.stderr)
                print("\n".join(timer.lines()), file=sys.stderr, flush=True)
    summary = {"target": args.target, "tag": tag, "engine": engine.kind, "image_id": result.image_id,
               "output": str(args.output) if args.output is not None else None,
               "files": [str(f) for f in files],
               "stages": [{"stage": name, "seconds": secs} for name, secs in timer.table()],
               "seconds": round(time.monotonic() - started, 1)}
    if args.json:
        emit_json(summary)
    else:
        copied = f"; {len(files)} files in {args.output}" if args.output is not None else ""
        print(f"{PROG}: built {tag} ({result.image_id or engine.kind}) in {summary['seconds']:.0f} s{copied}",
              file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)
