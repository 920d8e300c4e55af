#!/usr/bin/env python3
"""Benchmark (a script, not a test): apply_patches on >= 1,000 odd trees, with figures.

    python tests/benchmarks/fuzz_odd_trees.py [--trees N] [--seed S] [--roundtrip-every K] [--json]

Mutated TensorFlow (shape c, the real manifest) and tensorflow/models (synthetic DeepLab files, generated
patches, the real rule) trees, git and plain, apply / --check / --commit: symbolic links (inside, outside
with and without --follow-symlinks, dangling, loops, to a folder, chains, absolute), hard links,
unreadable/unwritable files and folders (run as an unprivileged user: dropped to when running as root,
skipped with the reason where there is none), CRLF, mixed line ends, a BOM, binary garbage, truncation,
the check moved/duplicated/commented out/removed/given another limit (models: call sites moved,
duplicated, commented out), the file replaced or relinked between the plan and the write. See
tests/apply/oddtrees.py for the generator and the property each run is judged by.

Prints: trees tried, outcomes by mutation kind, the wrong answers (each with its case, to reproduce:
target/git-or-plain/kind/mode/seed), and the time. Exit status 1 when any answer is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests" / "apply"))
sys.path.insert(0, str(REPO / "tests"))

from apply_helpers import GIT_ENV, ModelsWorld  # noqa: E402

os.environ.update(GIT_ENV)
os.environ.update({"LC_ALL": "C", "TZ": "UTC", "GIT_CONFIG_NOSYSTEM": "1"})
import oddtrees as ot  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=1000, help="how many trees (default 1000)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--roundtrip-every", type=int, default=1, metavar="K",
                    help="run every K-th applied tree again and reverse it (default 1: every one)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    started = time.perf_counter()
    unpriv, why = ot.find_unprivileged()
    with ot.scratch_space(Path(tempfile.gettempdir())) as where:
        world = ModelsWorld(where / "models-world")
        bases = {"tensorflow": ot.tf_base(), "models": ot.models_base(world)}
        plan = ot.plan(args.trees, args.seed, permissions=unpriv is not None)
        by_kind = defaultdict(Counter)
        outcomes, targets, modes = Counter(), Counter(), Counter()
        wrong = []
        for i, (target, kind, repo, mode, seed) in enumerate(plan):
            c = ot.make_case(bases[target], kind, repo, mode, seed, where / f"c{i}")
            try:
                v = ot.exercise(c, unpriv, roundtrip=i % args.roundtrip_every == 0)
            except Exception as exc:  # noqa: BLE001 - a harness failure is a finding too
                v = ot.Verdict(c.label, "harness-error", [f"{type(exc).__name__}: {exc}"])
            by_kind[f"{target}/{kind}"][v.outcome] += 1
            outcomes[v.outcome] += 1
            targets[f"{target} ({'git' if repo else 'plain'})"] += 1
            modes[mode] += 1
            if not v.ok:
                wrong.append({"case": v.case, "outcome": v.outcome, "why": v.wrong})
            shutil.rmtree(c.dir, ignore_errors=True)
            if (i + 1) % 100 == 0:
                print(f"... {i + 1} trees, {len(wrong)} wrong", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    figures = {
        "trees": len(plan),
        "seed": args.seed,
        "wrong": len(wrong),
        "outcomes": dict(outcomes.most_common()),
        "trees_by_target": dict(targets),
        "trees_by_mode": dict(modes),
        "outcomes_by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "permission_cases": "run as an unprivileged user" if unpriv is not None else f"skipped: {why}",
        "seconds": round(seconds, 1),
        "wrong_cases": wrong,
    }
    if args.json:
        json.dump(figures, sys.stdout, indent=1)
        print()
    else:
        print(f"odd trees: {len(plan)} trees (seed {args.seed}), {len(wrong)} wrong, {seconds:.0f} s")
        print("  by tree: " + ", ".join(f"{k} {n}" for k, n in sorted(targets.items())))
        print("  by mode: " + ", ".join(f"{k} {n}" for k, n in sorted(modes.items())))
        print("  outcomes: " + ", ".join(f"{k} {n}" for k, n in outcomes.most_common()))
        print(f"  permission cases: {figures['permission_cases']}")
        print("  by mutation kind:")
        for k, v in sorted(by_kind.items()):
            print(f"    {k:40} " + ", ".join(f"{o} {n}" for o, n in v.most_common()))
        for w in wrong[:20]:
            print(f"  WRONG {w['case']}: {w['outcome']}: {'; '.join(w['why'])[:400]}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
