"""check_delegation: predict how TFLite's NNAPI delegate partitions a .tflite model, and read a phone's
benchmark_model profile.

Exit codes: 0 done (and, with --expect-single-partition, every model is one delegate node); 1 some model
is not one delegate node (--expect-single-partition); 2 bad usage or unreadable/corrupt input.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import DelegateOptions, DelegationPlan, plan_model
from deeplab_nnapi.nnapi.profile import Profile, compare, load_profile
from deeplab_nnapi.nnapi.rules import MAX_API, MIN_API, load_rules, version_key
from deeplab_nnapi.nnapi.tflite_model import TFLiteModel, format_ranges, load_model

from . import ArgumentParser, emit_json, run
from .delegation_args import _apis, _delegates, _nonneg

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
    p.add_argument(
        "--engine",
        choices=("predictor", "probe"),
        default="predictor",
        help="who answers: our re-implementation of the delegate's rules (predictor, the default, no source "
        "needed), or the real delegate built from --source-dir (probe; see probe_delegation.py)",
    )
    p.add_argument(
        "--source-dir",
        type=Path,
        default=None,
        metavar="TREE",
        help="TensorFlow (>= 2.2) or LiteRT source tree whose delegate --engine probe and --cross-check "
        "build",
    )
    p.add_argument(
        "--cross-check",
        action="store_true",
        help="answer with both engines, print them side by side and exit 1 on any difference (needs "
        "--source-dir; the predictor uses the tree's TF release unless --tf-version is given)",
    )
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR", help="probe build cache (see "
                   "probe_delegation.py --help)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _ops_text(ops: Sequence[int]) -> str:
    return format_ranges(ops)


def format_plan(plan: DelegationPlan) -> List[str]:
    opts = plan.options or DelegateOptions()
    if plan.engine == "probe":
        src = plan.source or {}
        head = (
            f"{plan.model}: {plan.num_ops} ops; real {opts.delegate} delegate of "
            f"{src.get('version') or src.get('layout', 'the tree')} ({src.get('tree', '?')}), "
            f"Android API {opts.android_api}, max partitions {opts.max_partitions or 'unlimited'}"
        )
    else:
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
    if plan.status == "crash":
        verdict = "the delegate crashes on this model (see the note): no plan"
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
    if args.engine == "probe" or args.cross_check:
        if args.source_dir is None:
            raise UsageError("--engine probe and --cross-check need --source-dir TREE")
        if not models:
            raise UsageError("--engine probe and --cross-check need MODEL.tflite files")
        if args.cross_check:
            return _cross_check(args, models, option_sets)
        if args.diagram is not None:
            raise UsageError("--diagram draws the predictor's plans; leave out --engine probe")
        return _probe(args, models, option_sets, profile)
    elif args.source_dir is not None:
        raise UsageError("--source-dir is used by --engine probe and --cross-check only")
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


def _real_delegates(args) -> dict:
    from deeplab_nnapi.probe.engine import RealDelegate

    say = None if (args.quiet or args.json) else _progress
    return {d: RealDelegate(args.source_dir, d, cache_dir=args.cache_dir, progress=say)
            for d in args.delegate}


def _progress(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _real_results(args, models: List[TFLiteModel], option_sets: List[DelegateOptions]) -> list:
    """The real delegate's answers, in the predictor's order (models outer, option sets inner)."""
    engines = _real_delegates(args)
    by_key = {}
    for delegate, engine in engines.items():
        opts = [o for o in option_sets if o.delegate == delegate]
        for k, r in enumerate(engine.plans(models, opts)):
            by_key[(k // len(opts), opts[k % len(opts)])] = r
    return [by_key[(i, o)] for i in range(len(models)) for o in option_sets]


def _probe(args, models, option_sets, profile) -> int:
    from deeplab_nnapi.cli.probe_delegation import format_failure
    from deeplab_nnapi.probe.run import ProbeFailure

    results = _real_results(args, models, option_sets)
    planned = all(not isinstance(r, ProbeFailure) for r in results)
    ok = planned and all(r.single_partition for r in results)
    if profile is not None:
        ok = ok and len(profile.nodes) == 1 and profile.nodes[0].is_delegate
    if args.json:
        items = [r.to_json() for r in results]
        if profile is not None:
            for item, r in zip(items, results):
                if not isinstance(r, ProbeFailure):
                    item["profile"] = profile.to_json()
                    item["differences"] = [x.to_json() for x in compare(r.nodes, profile)]
        emit_json(items[0] if len(items) == 1 else {"models": items, "all_single_partition": ok})
    else:
        out: List[str] = []
        for r in results:
            if isinstance(r, ProbeFailure):
                out += format_failure(r)
                continue
            out += format_plan(r)
            if profile is not None:
                out += format_side_by_side(r, profile)
        if profile is not None:
            out += format_profile(profile)
        sys.stdout.write("\n".join(out) + "\n")
    if not planned:
        return 1
    return 1 if args.expect_single_partition and not ok else 0


def _cross_check(args, models, option_sets) -> int:
    from deeplab_nnapi.probe.crosscheck import differences, predictor_release
    from deeplab_nnapi.probe.run import ProbeFailure

    engines = _real_delegates(args)
    release = args.tf_version or predictor_release(next(iter(engines.values())).source)
    results = _real_results(args, models, option_sets)
    rows = []
    k = 0
    for m in models:
        for o in option_sets:
            predicted = plan_model(m, dataclasses.replace(o, tf_version=release))
            real = results[k]
            k += 1
            rows.append((m, o, predicted, real, differences(predicted, real)))
    agree = all(not d for *_, d in rows)
    if args.json:
        emit_json({"agree": agree, "tf_version_rules": release or load_rules().newest_release,
                   "source": next(iter(engines.values())).source,
                   "cases": [{"model": m.source, "android_api": o.android_api, "delegate": o.delegate,
                              "agree": not d, "differences": d, "predicted": p.to_json(), "real": r.to_json()}
                             for m, o, p, r, d in rows]})
    else:
        out: List[str] = []
        for m, o, p, r, d in rows:
            out.append(f"{m.source}: {o.delegate} delegate, Android API {o.android_api}: predictor (TF "
                       f"{p.tf_version} rules) beside the real delegate: {'same' if not d else 'DIFFERENT'}")
            left = [f"{n.type} {_ops_text(n.ops)} :{n.index}" for n in p.nodes]
            right = ([f"{n.type} {_ops_text(n.ops)} :{n.index}" for n in r.nodes]
                     if not isinstance(r, ProbeFailure) else [f"no plan: {r.status}: {r.message}"])
            wl = max([len(x) for x in left] + [len("[predicted]")])
            out.append(f"  {'[predicted]':<{wl}}  [real]")
            for i in range(max(len(left), len(right))):
                a = left[i] if i < len(left) else "-"
                b = right[i] if i < len(right) else "-"
                out.append(f"  {a:<{wl}}  {b}" + ("" if a == b else "   <-- differs"))
            out += [f"  difference: {x}" for x in d]
        n_diff = sum(1 for *_, d in rows if d)
        out.append(f"cross-check: {len(rows)} case(s), {len(rows) - n_diff} agree, {n_diff} differ")
        sys.stdout.write("\n".join(out) + "\n")
    return 0 if agree else 1


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
