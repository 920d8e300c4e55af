#!/usr/bin/env python3
"""Benchmark (a script, not a test): 10,000 mutated models through the model tools, with figures.

    python tests/benchmarks/fuzz_models.py [--models N] [--seed S] [--big-share F] [--probe CMD] [--json]

Seeds: the Google-shaped reference model (2 MB, from <repo>/../shared/reference/models or
$DEEPLAB_NNAPI_REFERENCE/models) and small graphs built with the schema object API (ai-edge-litert). Every
mutant goes through both Python model readers (nnapi/tflite_model.py, fixer/model_io.py), check_delegation
(the CLI, in this process, random options) and fix_model (the CLI, --no-agreement, random options; every
small mutant, every 25th of the big seed). See tests/modelfuzz.py for the mutations and the property.

--probe CMD adds a command-line model reader (e.g. the C++ delegation probe's front end) judged the same
way: CMD MODEL exit 0/1 = accepted, exit 2 with one line = refused, anything else = wrong.

Prints: models tried, outcomes per tool, outcomes per (seed, mutation), the wrong answers, the time. Exit
status 1 when any answer is wrong.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))

import modelfuzz as mf  # noqa: E402
from reference_support import REFERENCE_MODELS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--big-share", type=float, default=None, metavar="F",
                    help="share of mutants from the 2 MB seed (default: every (seed, mutation) pair in turn)")
    ap.add_argument("--fix-big-every", type=int, default=25, metavar="K")
    ap.add_argument("--probe", metavar="CMD", help="also judge this command-line model reader")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    pool = mf.seeds(REFERENCE_MODELS)
    if not pool:
        print("no seed model: neither the reference models nor ai-edge-litert", file=sys.stderr)
        return 2
    extra = {"probe": mf.cli_reader(shlex.split(args.probe))} if args.probe else None
    with tempfile.TemporaryDirectory(prefix="deeplab-nnapi-fuzz-models-") as work:
        figures = mf.fuzz(args.models, args.seed, pool, Path(work), fix_big_every=args.fix_big_every,
                          extra_readers=extra, big_share=args.big_share)
    data = figures.to_json()
    data["seeds"] = {s.name: len(s.data) for s in pool}
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        print(f"mutated models: {figures.models} (seed {args.seed}; seeds "
              + ", ".join(f"{k} {v} bytes" for k, v in data["seeds"].items())
              + f"), {len(figures.wrong)} wrong, {figures.seconds:.0f} s")
        for tool, kinds in sorted(figures.by_tool.items()):
            print(f"  {tool:26} " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
        print("  by seed/mutation:")
        for k, v in sorted(figures.by_mutation.items()):
            print(f"    {k:24} " + ", ".join(f"{o} {n}" for o, n in sorted(v.items())))
        for w in figures.wrong[:20]:
            print(f"  WRONG {w[:400]}")
    return 1 if figures.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
