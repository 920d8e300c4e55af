"""The predictor held to the real delegate's answers, recorded as golden data (tests/probe/golden).

The golden files were made by tests/benchmarks/differential_probe.py --record from the real NNAPI delegate
of each tree (built on the host, see deeplab_nnapi.probe): per model of the differential corpus and per case
(stock/patched delegate, option set, API level 27..33), the execution plan and the refusal reasons. The
corpus is rebuilt here from its seed, so no C++ source and no compiler is needed. Every difference must be
one of tests/probe/golden/known_differences.toml, and every known difference must still occur.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")  # the corpus is built with TFLite's schema object API

from deeplab_nnapi.probe.differential import (  # noqa: E402
    cases_of,
    compare_answers,
    predicted_answers,
    read_golden,
)
from golden_support import GOLDEN_DIR, explain, load_known  # noqa: E402
from probe_corpus import full_corpus  # noqa: E402

GOLDEN = sorted(GOLDEN_DIR.glob("*.jsonl.gz"))


def test_there_is_golden_data_for_two_trees():
    assert len(GOLDEN) >= 2, GOLDEN


@pytest.fixture(scope="module")
def corpus(reference_models):
    header, _ = read_golden(GOLDEN[0])
    return full_corpus(header["seed"], header["scale"])


@pytest.mark.parametrize("golden", GOLDEN, ids=[p.name.split(".")[0] for p in GOLDEN])
def test_predictor_agrees_with_the_real_delegate(golden: Path, corpus):
    header, real = read_golden(golden)
    tree = header["tree"]
    # The generator is deterministic: the same models, by key, as when the golden data was recorded.
    assert {k for k, _ in real} == {e.key for e in corpus.entries}
    assert header["models"] == len(corpus.entries) and header["cases"] == len(real)
    cases = cases_of({label for _, label in real})
    predicted = predicted_answers(corpus, cases, header["release_rules"])
    assert set(predicted) == set(real)
    known = load_known()
    diffs = compare_answers(predicted, real)
    unexplained = [d for d in diffs if explain(known, tree, corpus, d) is None]
    assert not unexplained, "\n".join(
        f"{d.key} {d.case}: predicted {d.predicted}, real {d.real}" for d in unexplained[:20]
    )
    used = {explain(known, tree, corpus, d) for d in diffs}
    stale = [k["id"] for k in known if tree in k.get("trees", [tree]) and k["id"] not in used]
    assert not stale, f"known differences that no longer occur on {tree}: {stale}"


def test_the_published_models_are_in_the_golden_data_with_the_seed_profile(corpus):
    """Google's model at API 29 under the stock delegate: the seed profile's 8 nodes, in every tree."""
    for golden in GOLDEN:
        _, real = read_golden(golden)
        google = real[("google:deeplabv3_mnv2_pascal_513_os8_quant", "stock/default/29")]
        assert google["nodes"] == (
            "NNAPI:0-60 + 64 AVERAGE_POOL_2D:61 NNAPI:62 RESIZE_BILINEAR:63 "
            "NNAPI:65-67 RESIZE_BILINEAR:68 RESIZE_BILINEAR:69 ARG_MAX:70"
        ), golden
        assert real[("google:deeplabv3_mnv2_pascal_513_os8_quant", "stock/default/30")]["nodes"] == (
            "NNAPI:0-60 + 64 AVERAGE_POOL_2D:61 NNAPI:62-63 + 65-69 ARG_MAX:70"
        )
        for key, label in real:
            if key.startswith("reference:") and label.startswith("patched/") and label.endswith("/29"):
                assert real[(key, label)]["nodes"] == "NNAPI:0-70", (golden, key, label)
