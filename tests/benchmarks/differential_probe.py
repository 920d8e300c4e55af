#!/usr/bin/env python3
"""The predictor against the real NNAPI delegate of one or more source trees, over the differential corpus.

    python tests/benchmarks/differential_probe.py --tree litert=~/src/LiteRT --tree tf2.9=~/src/tf-2.9.2
    python tests/benchmarks/differential_probe.py --tree litert=~/src/LiteRT --record    # rewrite golden data

For every tree: builds the stock and the patched delegate (cached), runs the generated models (seeded, about
2,400), the published models, their Google-shaped forms and fix_model's outputs at API 27..33 with the option
sets of deeplab_nnapi.probe.differential, and the predictor with the tree's TF release rules. Prints the
cases, the differences and how each is explained (tests/probe/golden/known_differences.toml), and the time
per case of both. --record writes tests/probe/golden/<name>.jsonl.gz, which CI holds the predictor to.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "probe"), str(HERE.parents[1] / "tools")]

from deeplab_nnapi.nnapi.tflite_model import format_ranges  # noqa: E402
from deeplab_nnapi.probe.crosscheck import predictor_release  # noqa: E402
from deeplab_nnapi.probe.differential import (  # noqa: E402
    DELEGATES,
    all_cases,
    answer_of,
    compare_answers,
    predicted_answers,
    real_answers,
    write_golden,
)
from deeplab_nnapi.probe.engine import RealDelegate  # noqa: E402
from golden_support import GOLDEN_DIR, explain, load_known  # noqa: E402
from probe_corpus import full_corpus  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tree",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a source tree and the name its golden file gets (repeatable)",
    )
    ap.add_argument("--record", action="store_true", help="write the golden data")
    ap.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=REPO@COMMIT",
        help="what a tree is upstream, recorded in its golden file (repeatable)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0, help="corpus size factor (1.0: about 2,400 models)")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--show", type=int, default=3, help="examples printed per unexplained difference kind")
    ap.add_argument(
        "--fuzz",
        type=int,
        default=0,
        metavar="N",
        help="also N mutated models (seeded byte flips, words, truncations of the corpus), stock "
        "delegate at API 29: how the predictor's reader and TFLite's compare",
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    corpus = full_corpus(args.seed, args.scale)
    print(f"corpus: {len(corpus.entries)} models ({time.perf_counter() - t0:.1f} s to build)")
    cases = all_cases()
    known = load_known()
    by_key = corpus.by_key()
    upstream = dict(u.partition("=")[::2] for u in args.upstream)
    rows = []
    unexplained_total = 0
    for item in args.tree:
        name, _, directory = item.partition("=")
        engines = {
            d: RealDelegate(
                Path(directory).expanduser(),
                d,
                cache_dir=args.cache_dir,
                progress=lambda m: print(f"  {m}", file=sys.stderr),
            )
            for d in DELEGATES
        }
        t = time.perf_counter()
        for e in engines.values():
            e.build()
        build_s = time.perf_counter() - t
        source = engines["stock"].source
        release = predictor_release(source)
        t = time.perf_counter()
        real = real_answers(engines, corpus, cases, progress=lambda m: print(f"  {m}", file=sys.stderr))
        real_s = time.perf_counter() - t
        t = time.perf_counter()
        predicted = predicted_answers(corpus, cases, release)
        pred_s = time.perf_counter() - t
        diffs = compare_answers(predicted, real)
        kinds = Counter()
        unexplained = []
        for d in diffs:
            k = explain(known, name, corpus, d)
            kinds[k or "UNEXPLAINED"] += 1
            if k is None:
                unexplained.append(d)
        unexplained_total += len(unexplained)
        print(
            f"\n{name}: {source.get('version') or source['layout']} ({directory}), predictor with TF "
            f"{release or 'newest'} rules; builds {build_s:.0f} s"
        )
        print(
            f"  cases {len(real)}: real delegate {1000 * real_s / len(real):.2f} ms/case, predictor "
            f"{1000 * pred_s / len(real):.3f} ms/case"
        )
        for delegate in DELEGATES:
            for api in sorted({c.api for c in cases}):
                n = sum(
                    1 for (_, label) in real if label.startswith(f"{delegate}/") and label.endswith(f"/{api}")
                )
                dd = sum(1 for d in diffs if d.case.startswith(f"{delegate}/") and d.case.endswith(f"/{api}"))
                rows.append((name, delegate, api, n, dd))
        print(f"  differences: {len(diffs)}; by explanation: {dict(kinds)}")
        shown = Counter()
        for d in unexplained:
            fam = d.key.split("-")[0]
            if shown[fam] >= args.show:
                continue
            shown[fam] += 1
            entry = by_key[d.key]
            print(
                f"  UNEXPLAINED {entry.describe} {d.case}\n"
                f"    predicted {d.predicted}\n    real      {d.real}"
            )
        if args.record:
            GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
            header = {
                "tree": name,
                "upstream": upstream.get(name),
                "source": {k: source.get(k) for k in ("layout", "version", "commit")},
                "release_rules": release,
                "seed": args.seed,
                "scale": args.scale,
                "cases": len(real),
                "models": len(corpus.entries),
            }
            path = GOLDEN_DIR / f"{name}.jsonl.gz"
            write_golden(path, header, corpus, real)
            print(f"  golden data written: {path} ({path.stat().st_size} bytes)")
        if args.fuzz:
            fuzz(engines["stock"], corpus, args.fuzz, args.seed, release)
    print("\n| tree | delegate | API | cases | differences |\n|---|---|---|---|---|")
    for name, delegate, api, n, dd in rows:
        print(f"| {name} | {delegate} | {api} | {n} | {dd} |")
    return 1 if unexplained_total else 0


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.choice(["flip", "flip", "word", "truncate"])
    if kind == "truncate":
        return bytes(buf[: rng.randrange(8, len(buf))])
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(8, len(buf) - 4)  # keep the root offset and the file identifier
        if kind == "flip":
            buf[i] ^= 1 << rng.randrange(8)
        else:
            buf[i : i + 4] = rng.choice([0, 1, 2, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)]).to_bytes(
                4, "little"
            )
    return bytes(buf)


def fuzz(engine, corpus, count: int, seed: int, release) -> None:
    """Mutated models through both readers: the predictor (our reader) and the probe (TFLite's verifier and
    interpreter builder, then the delegate)."""
    import tempfile

    from deeplab_nnapi.errors import UsageError
    from deeplab_nnapi.nnapi.delegation import DelegateOptions, plan_model
    from deeplab_nnapi.nnapi.tflite_model import load_model
    from deeplab_nnapi.probe.run import ProbeSettings, run_binary

    rng = random.Random(seed)
    sources = [e for e in corpus.entries]
    binary = engine.build().binary
    outcomes = Counter()
    examples = {}
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths, preds = [], []
        for i in range(count):
            data = mutate(rng.choice(sources).data, rng)
            p = Path(tmp) / f"{i:06d}.tflite"
            p.write_bytes(data)
            paths.append(p)
            try:
                plan = plan_model(
                    load_model(data, p.name),
                    DelegateOptions(android_api=29, delegate="stock", tf_version=release),
                )
                preds.append(answer_of(plan))
            except UsageError:
                preds.append({"status": "model_error"})
        cases = run_binary(binary, paths, [29], ProbeSettings())
        for p, pred, case in zip(paths, preds, cases):
            real = (
                {"status": case["status"]}
                if case["status"] != "ok"
                else {
                    "nodes": " ".join(
                        ("NNAPI" if n["type"] == "TfLiteNnapiDelegate" else n["type"])
                        + ":"
                        + format_ranges(n["ops"])
                        for n in case["nodes"]
                    )
                }
            )
            if pred.get("status") == "model_error":
                kind = (
                    "both refuse to read"
                    if real.get("status") == "model_error"
                    else (f"only our reader refuses (TFLite: {real.get('status', 'plan')})")
                )
            elif pred.get("status") == "crash" and real.get("status") == "crash":
                kind = "both: the delegate crashes (a bias given as tensor -1)"
            elif real.get("status") in ("crash", "timeout"):
                kind = f"TFLite {real['status']}es, we give a plan"
            elif real.get("status"):
                kind = f"only TFLite refuses ({real['status']})"
            else:
                kind = (
                    "both plan, same nodes"
                    if pred["nodes"] == real["nodes"]
                    else "both plan, DIFFERENT nodes"
                )
            outcomes[kind] += 1
            examples.setdefault(kind, p.name)
    print(f"  fuzz: {count} mutated models in {time.perf_counter() - t:.0f} s")
    for kind, n in outcomes.most_common():
        print(f"    {n:6d}  {kind}")


if __name__ == "__main__":
    sys.exit(main())
