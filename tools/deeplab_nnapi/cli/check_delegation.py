"""check_delegation: predict how TFLite's NNAPI delegate partitions a .tflite model, and read a phone's
benchmark_model profile.

Exit codes: 0 done (and, with --expect-single-partition, every model is one delegate node); 1 some model
is not one delegate node (--expect-single-partition); 2 bad usage or unreadable/corrupt input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import DELEGATES, DelegateOptions, DelegationPlan, plan_model
from deeplab_nnapi.nnapi.profile import Profile, compare, load_profile
from deeplab_nnapi.nnapi.rules import MAX_API, MIN_API, load_rules, version_key
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, format_ranges, load_model

from . import ArgumentParser, emit_json, run

PROG = "check_delegation"

EPILOG = """\
examples:
  check_delegation.py model.tflite                              # patched delegate, Android API 29
  check_delegation.py model.tflite --delegate stock --android-api 29
  check_delegation.py models/*.tflite --expect-single-partition # exit 1 unless each is one partition
  check_delegation.py --profile benchmark_output.txt            # what a phone's profile says
  check_delegation.py model.tflite --delegate stock --profile benchmark_output.txt  # both, side by side
  check_delegation.py model.tflite --delegate stock,patched --diagram partitions.svg  # the picture
  check_delegation.py google.tflite fixed.tflite --android-api 29,30 --diagram sheet.png

The prediction re-implements the delegate's per-op rules (NNAPIDelegateKernel::Validate, per TF release
and API level) and TFLite's partitioner; it assumes the device has an NNAPI accelerator and that the
accelerator accepts every op the delegate hands it.

exit status: 0 done; 1 --expect-single-partition and some model (or the --profile) is not one delegate node;
2 bad usage or a missing, truncated or corrupt file.
"""



def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"

def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _api(text: str) -> int:
    value = _int(text)
    if not MIN_API <= value <= MAX_API:
        raise argparse.ArgumentTypeError(f"{value} is outside {MIN_API}..{MAX_API}")
    return value


def _apis(text: str) -> List[int]:
    return _unique([_api(part.strip()) for part in text.split(",")], "--android-api")


def _delegates(text: str) -> List[str]:
    out = []
    for part in text.split(","):
        name = part.strip()
        if name not in DELEGATES:
            raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {', '.join(DELEGATES)})")
        out.append(name)
    return _unique(out, "--delegate")


def _unique(values: list, option: str) -> list:
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a value is repeated in {','.join(map(str, values))}")
    return values


def _nonneg(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0 = no limit)")
    return value


def build_parser() -> argparse.ArgumentParser:
    rules = load_rules()
    releases = sorted(rules.releases, key=version_key)
    p = ArgumentParser(
        prog=PROG,
        description="Predict how TFLite's NNAPI delegate partitions .tflite models (no phone needed), "
        "and read benchmark_model --enable_op_profiling output.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="*", metavar="MODEL.tflite", help="models to check")
    p.add_argument(
        "--android-api",
        type=_apis,
        default=[29],
        metavar="N[,N...]",
        help=f"Android API level of the device ({MIN_API}..{MAX_API}; NNAPI 1.2 = 29, 1.3 = 30). "
        "Default: 29. Several (29,30): every model is checked at each",
    )
    p.add_argument(
        "--delegate",
        type=_delegates,
        default=["patched"],
        metavar="stock|patched[,...]",
        help="stock TFLite delegate, or with our patch set applied (pool-size check removed). "
        "Default: patched. Both (stock,patched): every model is checked with each",
    )
    p.add_argument(
        "--tf-version",
        metavar="2.N",
        default=None,
        help=f"TF release whose delegate rules apply ({releases[0]}..{releases[-1]}). "
        f"Default: {rules.newest_release}",
    )
    p.add_argument(
        "--accelerator",
        metavar="NAME",
        default=None,
        help="NNAPI accelerator name given to the delegate (accelerator_name); makes "
        "is_accelerator_specified true, so the pool-size check does not apply "
        "('nnapi-reference' and an empty name do not count)",
    )
    p.add_argument(
        "--disallow-nnapi-cpu",
        action="store_true",
        help="the delegate's disallow_nnapi_cpu option; from TF 2.2 on API >= 29 it also makes "
        "is_accelerator_specified true",
    )
    p.add_argument(
        "--max-partitions",
        type=_nonneg,
        default=3,
        metavar="N",
        help="max_number_delegated_partitions (default 3, the delegate's default; 0 = no limit, "
        "as benchmark_model passes unless its --max_delegated_partitions is set)",
    )
    p.add_argument(
        "--expect-single-partition",
        action="store_true",
        help="exit 1 unless every model and the --profile (if given) is exactly one delegate node",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        type=Path,
        default=None,
        help="benchmark_model --enable_op_profiling=true output; with a model, shown beside the "
        "prediction with differences flagged",
    )
    p.add_argument(
        "--diagram",
        metavar="FILE.svg|FILE.png",
        type=Path,
        default=None,
        help="draw the partitions: ops in execution order coloured by the node they run in, refused ops with "
        "the delegate's reason, measured times with --profile; several models/delegates/API levels side by "
        "side on one sheet (needs the 'pictures' extra)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _ops_text(ops: Sequence[int]) -> str:
    return format_ranges(ops)


def format_plan(plan: DelegationPlan) -> List[str]:
    opts = plan.options or DelegateOptions()
    head = (
        f"{plan.model}: {plan.num_ops} ops; {opts.delegate} delegate, TF {plan.tf_version} rules, "
        f"Android API {opts.android_api}, max partitions {opts.max_partitions or 'unlimited'}, "
        f"is_accelerator_specified={'true' if plan.is_accelerator_specified else 'false'}"
    )
    lines = [head]
    width = max([len(n.type) for n in plan.nodes] + [11])
    ops_width = max([len(_ops_text(n.ops)) for n in plan.nodes] + [5])
    lines.append(f"  {'[node type]':>{width}}  {'[ops]':<{ops_width}}  [Name]")
    for n in plan.nodes:
        lines.append(f"  {n.type:>{width}}  {_ops_text(n.ops):<{ops_width}}  {n.label}")
    for r in plan.refused:
        lines.append(f"  refused: op {r.op} {r.op_type}: {r.reason}")
    for note in plan.notes:
        lines.append(f"  note: {note}")
    d = len(plan.delegate_nodes)
    verdict = "single NNAPI partition" if plan.single_partition else "NOT a single NNAPI partition"
    lines.append(f"  result: {_nodes(len(plan.nodes))} ({d} delegate, {len(plan.nodes) - d} CPU): {verdict}")
    return lines


def format_profile(profile: Profile) -> List[str]:
    lines = [f"{profile.source}: benchmark_model profile ({profile.section or 'node table'})"]
    width = max([len(n.type) for n in profile.nodes] + [11])
    lines.append(f"  {'[node type]':>{width}}  {'[avg ms]':>9}  {'[%]':>8}  [Name]")
    for n in profile.nodes:
        pct = f"{n.percent:.3f}%" if n.percent is not None else "-"
        idx = f":{n.index}" if n.index is not None else ""
        lines.append(f"  {n.type:>{width}}  {n.avg_ms:>9.3f}  {pct:>8}  {n.name}{idx}")
    d = len(profile.delegate_nodes)
    lines.append(
        f"  result: {_nodes(len(profile.nodes))} ({d} delegate, {len(profile.nodes) - d} CPU), "
        f"CPU fallback {profile.cpu_fallback_percent:.1f} % of the run"
    )
    return lines


def format_side_by_side(plan: DelegationPlan, profile: Profile) -> List[str]:
    diffs = compare(plan.nodes, profile)
    flagged = {d.position for d in diffs}
    rows = []
    n = max(len(plan.nodes), len(profile.nodes))
    for i in range(n):
        p = plan.nodes[i] if i < len(plan.nodes) else None
        q = profile.nodes[i] if i < len(profile.nodes) else None
        left = f"{p.type} {_ops_text(p.ops)} :{p.index}" if p else "-"
        right = (
            (f"{q.type}" + (f" :{q.index}" if q.index is not None else "") + f" {q.avg_ms:.3f} ms")
            if q
            else "-"
        )
        rows.append((left, right, "DIFFERENT" if i in flagged else "same"))
    wl = max(len(r[0]) for r in rows + [("[predicted]", "", "")])
    wr = max(len(r[1]) for r in rows + [("", "[profiled]", "")])
    lines = [
        f"prediction beside profile ({profile.source}):",
        f"  {'[predicted]':<{wl}}  {'[profiled]':<{wr}}  [match]",
    ]
    lines += [f"  {a:<{wl}}  {b:<{wr}}  {c}" for a, b, c in rows]
    if diffs:
        lines.append(f"  {len(diffs)} difference(s):")
        lines += [
            f"    node {d.position + 1}: {d.what}: predicted {d.predicted}; profiled {d.profiled}"
            for d in diffs
        ]
    else:
        lines.append("  no difference: the prediction matches the profile node for node")
    return lines


def _body(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    if not args.models and args.profile is None:
        raise UsageError("nothing to do: give MODEL.tflite files and/or --profile FILE (see --help)")
    option_sets = [
        DelegateOptions(
            android_api=api,
            delegate=delegate,
            tf_version=args.tf_version,
            # benchmark_model's delegate provider passes no name for an empty --nnapi_accelerator_name
            accelerator=args.accelerator or None,
            disallow_nnapi_cpu=args.disallow_nnapi_cpu,
            max_partitions=args.max_partitions,
        )
        for delegate in args.delegate
        for api in args.android_api
    ]
    if args.diagram is not None:
        _check_diagram_target(args.diagram, bool(args.models))
    profile = load_profile(args.profile) if args.profile is not None else None
    # Validate the release before touching any model, so a typo fails fast.
    load_rules().release(args.tf_version)
    models = [load_model(Path(m)) for m in args.models]
    runs = [(m, plan_model(m, o)) for m in models for o in option_sets]
    plans = [plan for _, plan in runs]
    if args.diagram is not None:
        _write_diagram(args.diagram, runs, profile)
        if not args.quiet:
            print(f"{PROG}: diagram of {len(runs)} plan(s) written to {args.diagram}", file=sys.stderr)
    ok = all(p.single_partition for p in plans)
    if profile is not None:  # a profile that shows more than one node fails too, beside a model or alone
        ok = ok and len(profile.nodes) == 1 and profile.nodes[0].is_delegate

    if args.json:
        emit_json(_json(plans, profile))
    else:
        out: List[str] = []
        for plan in plans:
            out += format_plan(plan)
            if profile is not None:
                out += format_side_by_side(plan, profile)
        if profile is not None:
            out += format_profile(profile)
        sys.stdout.write("\n".join(out) + "\n")
    if args.expect_single_partition and not ok:
        return 1
    return 0


def _check_diagram_target(path: Path, have_models: bool) -> None:
    """Refuse a diagram we could not write before any work: bad extension, no models, no matplotlib."""
    from deeplab_nnapi.pictures.render import matplotlib
    from deeplab_nnapi.pictures.writing import figure_format

    figure_format(path)
    if not have_models:
        raise UsageError("--diagram needs MODEL.tflite files to draw")
    if path.is_dir():
        raise UsageError(f"--diagram {path}: is a directory")
    matplotlib()


def _write_diagram(path: Path, runs: List[Tuple[TFLiteModel, DelegationPlan]],
                   profile: Optional[Profile]) -> None:
    from deeplab_nnapi.pictures.api import write_diagram
    from deeplab_nnapi.pictures.planview import Panel, attach_profile

    panels = [attach_profile(Panel(Path(m.source).name, m, plan), profile) for m, plan in runs]
    write_diagram(panels, path)


def _json(plans: List[DelegationPlan], profile: Optional[Profile]) -> Dict[str, Any]:
    def one(plan: DelegationPlan) -> Dict[str, Any]:
        d = plan.to_json()
        if profile is not None:
            d["profile"] = profile.to_json()
            d["differences"] = [x.to_json() for x in compare(plan.nodes, profile)]
        return d

    if not plans and profile is not None:
        return profile.to_json()
    if len(plans) == 1:
        return one(plans[0])
    return {"models": [one(p) for p in plans], "all_single_partition": all(p.single_partition for p in plans)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
