"""probe_delegation: the real NNAPI delegate of a TensorFlow or LiteRT source tree, built on this machine,
applied to models over a stub NNAPI device; prints the execution plan as check_delegation does.

Exit codes: 0 done (and, with --expect-single-partition, every model is one delegate node); 1 a model got
no plan (the delegate failed to prepare it, or crashed) or is not one partition when that was expected,
or our patches do not apply (--delegate patched); 2 bad usage, unreadable input, a tree that cannot be
built (one line naming what is missing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import DelegateOptions
from deeplab_nnapi.nnapi.tflite_model import load_model
from deeplab_nnapi.probe.engine import RealDelegate
from deeplab_nnapi.probe.run import ProbeFailure
from deeplab_nnapi.probe.toolchain import DEBIAN_PACKAGES, PIP_PACKAGES

from . import ArgumentParser, emit_json, run
from .check_delegation import format_plan
from .delegation_args import _apis, _delegates, _nonneg

PROG = "probe_delegation"

EPILOG = f"""\
examples:
  probe_delegation.py model.tflite --source-dir ~/src/LiteRT                 # stock delegate, API 29
  probe_delegation.py model.tflite --source-dir ~/src/tensorflow --delegate stock,patched --android-api 29,30
  probe_delegation.py out/*.tflite --source-dir ~/src/tf --delegate patched --expect-single-partition
  probe_delegation.py --source-dir ~/src/LiteRT --build-only                 # build (or find) the probe

The first run builds the delegate, the interpreter core and the probe from the tree (about 50 translation
units; a minute or two on 2 cores) into a cache keyed by the content of those sources and the compiler;
later runs start at once. --delegate patched applies our patch set to a scratch copy of the sources: the
tree is only read. The stub device accepts every operation the delegate hands it, so the plan is decided by
the delegate's own validation and TFLite's partitioning.

needs: apt-get install {DEBIAN_PACKAGES}; pip install {PIP_PACKAGES}

exit status: 0 done; 1 a model got no plan, or is not one partition with --expect-single-partition, or our
patches do not apply to the tree; 2 bad usage, unreadable model, or a tree the recipe cannot build.
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Build the NNAPI delegate of a TensorFlow (>= 2.2) or LiteRT "
        "source tree on this machine and print the execution plan it makes of models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="*", metavar="MODEL.tflite", help="models to probe")
    p.add_argument(
        "--source-dir",
        type=Path,
        required=True,
        metavar="TREE",
        help="top of a TensorFlow or LiteRT source tree (read only)",
    )
    p.add_argument(
        "--delegate",
        type=_delegates,
        default=["stock"],
        metavar="stock|patched[,...]",
        help="the tree's delegate as it is, or with our patch set applied to a scratch copy. Default: stock",
    )
    p.add_argument(
        "--android-api",
        type=_apis,
        default=[29],
        metavar="N[,N...]",
        help="Android API level(s) the stub NNAPI reports (27..35). Default: 29",
    )
    p.add_argument(
        "--accelerator",
        metavar="NAME",
        default=None,
        help="accelerator_name given to the delegate (the stub device takes that name)",
    )
    p.add_argument("--disallow-nnapi-cpu", action="store_true", help="the delegate's disallow_nnapi_cpu")
    p.add_argument(
        "--max-partitions",
        type=_nonneg,
        default=3,
        metavar="N",
        help="max_number_delegated_partitions (default 3; 0 = no limit)",
    )
    p.add_argument(
        "--expect-single-partition",
        action="store_true",
        help="exit 1 unless every model is exactly one delegate node",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where builds are cached (default $DEEPLAB_NNAPI_CACHE/probe or ~/.cache/deeplab-nnapi/probe)",
    )
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="compile jobs (default: CPU count)")
    p.add_argument("--build-only", action="store_true", help="build (or find in the cache) and stop")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _progress(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def format_failure(f: ProbeFailure) -> List[str]:
    return [
        f"{f.model}: Android API {f.options.android_api}, {f.options.delegate} delegate: no plan: "
        f"{f.status}: {f.message}"
    ]


def _body(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    if not args.models and not args.build_only:
        raise UsageError("nothing to do: give MODEL.tflite files (or --build-only)")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    say = None if (args.quiet or args.json) else _progress
    models = [load_model(Path(m)) for m in args.models]  # a bad model fails before any build
    engines = [
        RealDelegate(args.source_dir, d, cache_dir=args.cache_dir, jobs=args.jobs, progress=say)
        for d in args.delegate
    ]
    builds = [e.build() for e in engines]
    if say:
        for e, b in zip(engines, builds):
            state = "cached" if b.cached else f"built in {b.seconds:.0f} s ({b.compiled} compiled)"
            say(
                f"{e.delegate} delegate of {e.tree.root} ({e.source.get('version') or e.tree.kind}): "
                f"{b.binary} ({state})"
            )
    if args.build_only:
        if args.json:
            emit_json({"builds": [dict(b.to_json(), source=e.source) for e, b in zip(engines, builds)]})
        return 0
    results = []
    for e in engines:
        options = [
            DelegateOptions(
                android_api=api,
                delegate=e.delegate,
                accelerator=args.accelerator or None,
                disallow_nnapi_cpu=args.disallow_nnapi_cpu,
                max_partitions=args.max_partitions,
            )
            for api in args.android_api
        ]
        results.extend(e.plans(models, options))
    ok_plans = all(not isinstance(r, ProbeFailure) for r in results)
    single = ok_plans and all(r.single_partition for r in results)
    if args.json:
        items = [r.to_json() for r in results]
        emit_json(
            items[0]
            if len(items) == 1
            else {"models": items, "all_single_partition": single, "all_planned": ok_plans}
        )
    else:
        out: List[str] = []
        for r in results:
            out += format_failure(r) if isinstance(r, ProbeFailure) else format_plan(r)
        sys.stdout.write("\n".join(out) + "\n")
    if not ok_plans or (args.expect_single_partition and not single):
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
