"""Opt-in (-m delegate): build the real NNAPI delegate of source trees and probe models with it.

    DEEPLAB_NNAPI_PROBE_TREES=~/src/LiteRT:~/src/tf-2.9.2 python -m pytest -m delegate tests/probe

needs the compiler and libraries of probe_delegation.py --help. Each tree is built once per source state
(the build cache is kept in $DEEPLAB_NNAPI_CACHE when set, else in the test's home).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deeplab_nnapi.nnapi.delegation import DelegateOptions
from deeplab_nnapi.nnapi.tflite_model import load_model
from deeplab_nnapi.probe.engine import RealDelegate
from reference_support import REPO_ROOT

TREES = [Path(p).expanduser() for p in os.environ.get("DEEPLAB_NNAPI_PROBE_TREES", "").split(os.pathsep) if p]
CACHE = Path(os.environ["DEEPLAB_NNAPI_CACHE"]) if os.environ.get("DEEPLAB_NNAPI_CACHE") else None

pytestmark = [
    pytest.mark.delegate,
    pytest.mark.skipif(
        not TREES, reason="set DEEPLAB_NNAPI_PROBE_TREES to TF/LiteRT trees (os.pathsep-separated)"
    ),
]

SEED_PROFILE_NODES = [
    ("TfLiteNnapiDelegate", list(range(61)) + [64]),
    ("AVERAGE_POOL_2D", [61]),
    ("TfLiteNnapiDelegate", [62]),
    ("RESIZE_BILINEAR", [63]),
    ("TfLiteNnapiDelegate", [65, 66, 67]),
    ("RESIZE_BILINEAR", [68]),
    ("RESIZE_BILINEAR", [69]),
    ("ARG_MAX", [70]),
]


def tool(name: str, *args: str, env=None) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    if CACHE:
        e["DEEPLAB_NNAPI_CACHE"] = str(CACHE)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / name), *args],
        capture_output=True,
        text=True,
        timeout=1800,
        env=e,
    )


@pytest.fixture(scope="module", params=TREES, ids=[p.name for p in TREES])
def tree(request) -> Path:
    return request.param


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("nnapi_delegate.cc")):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_seed_profile_and_api_30_from_the_real_stock_delegate(tree, google_model):
    real = RealDelegate(tree, "stock", cache_dir=CACHE)
    p29, p30 = real.plans(
        [load_model(google_model)],
        [
            DelegateOptions(android_api=29, delegate="stock"),
            DelegateOptions(android_api=30, delegate="stock"),
        ],
    )
    assert [(n.type, n.ops) for n in p29.nodes] == SEED_PROFILE_NODES
    assert [n.index for n in p29.nodes] == [71, 61, 72, 63, 73, 68, 69, 70]  # as benchmark_model numbers them
    assert {r.op: r.reason for r in p29.refused} == {
        61: "Large filter window would overflow on the reference CPU path",
        63: "NNAPI does not support align_corners == true.",
        68: "NNAPI does not support align_corners == true.",
        69: "NNAPI does not support align_corners == true.",
        70: "NNAPI only supports int32 output.",
    }
    assert [n.type for n in p30.nodes] == [
        "TfLiteNnapiDelegate",
        "AVERAGE_POOL_2D",
        "TfLiteNnapiDelegate",
        "ARG_MAX",
    ]


def test_every_reference_model_is_one_partition_with_the_patched_delegate(tree, reference_models):
    before = digest(tree)
    real = RealDelegate(tree, "patched", cache_dir=CACHE)
    results = real.plans(
        [load_model(p) for p in reference_models],
        [DelegateOptions(android_api=a, delegate="patched") for a in (29, 30)],
    )
    assert len(results) == 2 * len(reference_models)
    assert all(r.single_partition for r in results), [r.to_json() for r in results if not r.single_partition]
    assert real.source["patch"]["patches"][0]["state"] in ("applied", "already-applied")
    assert digest(tree) == before  # the user's tree is only read


def test_second_build_comes_from_the_cache(tree):
    real = RealDelegate(tree, "stock", cache_dir=CACHE)
    real.build()
    again = RealDelegate(tree, "stock", cache_dir=CACHE).build()
    assert again.cached and again.compiled == 0


def test_probe_delegation_cli(tree, google_model, reference_models, tmp_path):
    r = tool(
        "probe_delegation.py",
        str(google_model),
        "--source-dir",
        str(tree),
        "--android-api",
        "29,30",
        "--json",
        "--expect-single-partition",
    )
    assert r.returncode == 1, r.stderr  # Google's model is not one partition under the stock delegate
    out = json.loads(r.stdout)
    assert [len(m["nodes"]) for m in out["models"]] == [8, 4]
    assert out["models"][0]["engine"] == "probe" and out["models"][0]["status"] == "ok"
    r = tool(
        "probe_delegation.py",
        *map(str, reference_models),
        "--source-dir",
        str(tree),
        "--delegate",
        "patched",
        "--expect-single-partition",
        "--quiet",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    r = tool("probe_delegation.py", str(bad), "--source-dir", str(tree))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = tool("probe_delegation.py", str(google_model), "--source-dir", str(tmp_path))
    assert r.returncode == 2 and "no NNAPI delegate here" in r.stderr


def test_cross_check_agrees_on_the_published_models(tree, google_model, reference_models):
    r = tool(
        "check_delegation.py",
        str(google_model),
        *map(str, reference_models[:2]),
        "--source-dir",
        str(tree),
        "--cross-check",
        "--delegate",
        "stock,patched",
        "--android-api",
        "27,29,30,33",
        "--json",
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    out = json.loads(r.stdout)
    assert out["agree"] and len(out["cases"]) == 3 * 2 * 4


def test_a_tree_that_cannot_be_built_gets_one_line(tree, tmp_path, google_model):
    broken = tmp_path / "broken"
    lite = "tflite" if (tree / "tflite/delegates/nnapi/nnapi_delegate.cc").is_file() else "tensorflow/lite"
    for rel in (f"{lite}/delegates/nnapi/nnapi_delegate.cc", f"{lite}/delegates/nnapi/nnapi_delegate.h"):
        (broken / rel).parent.mkdir(parents=True, exist_ok=True)
        (broken / rel).write_bytes((tree / rel).read_bytes())
    r = tool("probe_delegation.py", str(google_model), "--source-dir", str(broken))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("probe_delegation: error:"), r.stderr
