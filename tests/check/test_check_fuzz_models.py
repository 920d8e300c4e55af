"""A seeded thousand mutated models through the model tools: both Python model readers, check_delegation and
fix_model (tests/modelfuzz.py; tests/benchmarks/fuzz_models.py runs 10,000 and prints figures). Nothing
crashes, hangs or prints a traceback; fix_model writes only what it verified."""

from __future__ import annotations

import sys

import modelfuzz as mf
import pytest
from deeplab_nnapi.errors import UsageError
from reference_support import REFERENCE_MODELS

CI_MODELS = 1000
CI_SEED = 16


@pytest.fixture(scope="module")
def pool():
    seeds = mf.seeds(REFERENCE_MODELS)
    if not seeds:
        pytest.skip("no seed model: neither the reference models nor ai-edge-litert (for the small graphs)")
    return seeds


def test_a_thousand_mutated_models(tmp_path, pool):
    figures = mf.fuzz(CI_MODELS, CI_SEED, pool, tmp_path, fix_every=1, fix_big_every=50, big_share=0.1)
    assert figures.models == CI_MODELS
    assert not figures.wrong, "\n".join(figures.wrong[:10])
    check = figures.by_tool["check_delegation"]
    # the mutants reach every answer: refused as corrupt, predicted (one partition or not)
    assert check["exit-2"] and check["exit-0"] + check["exit-1"], check
    if "fix_model" in figures.by_tool:
        fix = figures.by_tool["fix_model"]
        assert fix["written"] and fix["exit-2"], fix


def test_the_reader_hook_reports_what_is_not_a_refusal(pool):
    """The hook other readers (the C++ probe) plug into: a reader that crashes, hangs or refuses in two
    lines is counted wrong; one that refuses with UsageError is not."""

    def fussy(data: bytes) -> None:
        if len(data) % 3 == 0:
            raise UsageError("refused, in one line")
        if len(data) % 3 == 1:
            raise IndexError("a crash")
        raise UsageError("two\nlines")

    models = list(mf.mutants(30, 3, pool))
    figures = mf.fuzz_readers({"fussy": fussy}, models)
    kinds = figures.by_tool["fussy"]
    assert kinds["refused"] + kinds["crash"] == 30
    assert len(figures.wrong) == sum(1 for m in models if len(m.data) % 3)


def test_a_command_line_reader_plugs_in(tmp_path, pool):
    """cli_reader: exit 0/1 = accepted, exit 2 with one line = refused, anything else = a crash."""
    script = tmp_path / "reader.py"
    script.write_text(
        "import sys\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "if data[4:8] != b'TFL3':\n"
        "    print('reader: error: not a model', file=sys.stderr); sys.exit(2)\n"
        "if len(data) % 2:\n"
        "    raise SystemExit('Traceback (most recent call last): boom')\n"
    )
    read = mf.cli_reader([sys.executable, str(script)])
    good = pool[-1].data
    assert mf.try_reader("cli", read, good).kind == ("accepted" if len(good) % 2 == 0 else "crash")
    assert mf.try_reader("cli", read, b"\0" * 40).kind == "refused"
    odd = mf.try_reader("cli", read, good[:8] + b"\0" * (1 - len(good) % 2) + good[8:])
    assert odd.kind == "crash" and odd.wrong
