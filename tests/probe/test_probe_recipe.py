"""The probe's build recipe without building: the source list, the cache keys, the schema fix-up, the
one-line failure messages, the toolchain checks, the runner's handling of a probe that crashes."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.nnapi.delegation import DelegateOptions
from deeplab_nnapi.nnapi.tflite_model import load_model
from deeplab_nnapi.probe import build as build_mod
from deeplab_nnapi.probe.build import build_key, explain_failure, object_key, probe_header
from deeplab_nnapi.probe.run import ProbeFailure, ProbeSettings, run_binary, to_result
from deeplab_nnapi.probe.sources import collect_sources, find_lite_tree, load_recipe
from deeplab_nnapi.probe.toolchain import Toolchain, ToolchainMissing, find_toolchain


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def mini_tree(root: Path, lite: str = "tensorflow/lite") -> Path:
    """A tree shaped like TFLite: the seeds, headers with sources beside them, a generated header with its
    schema, a platform variant the recipe excludes, and files nothing includes."""
    write(
        root,
        f"{lite}/delegates/nnapi/nnapi_delegate.cc",
        f'#include "{lite}/delegates/nnapi/nnapi_delegate.h"\n#include "{lite}/util.h"\n'
        '#include "absl/strings/str_cat.h"\n#include <vector>\n',
    )
    write(root, f"{lite}/delegates/nnapi/nnapi_delegate.h", f'#include "{lite}/c/common.h"\n')
    write(root, f"{lite}/delegates/nnapi/nnapi_delegate_disabled.cc", "// other platforms\n")
    write(root, f"{lite}/util.h", f'#include "{lite}/schema/schema_generated.h"\n')
    write(root, f"{lite}/util.cc", f'#include "{lite}/util.h"\n')
    write(root, f"{lite}/c/common.h", "// C API\n")
    write(root, f"{lite}/c/common.c", f'#include "{lite}/c/common.h"\n')
    write(root, f"{lite}/schema/schema_generated.h", "// generated\n")
    write(root, f"{lite}/schema/schema.fbs", "table Model {}\nroot_type Model;\n")
    write(root, f"{lite}/interpreter_builder.cc", f'#include "{lite}/interpreter.h"\n')
    write(root, f"{lite}/interpreter.h", "// interpreter\n")
    write(root, f"{lite}/interpreter.cc", f'#include "{lite}/interpreter.h"\n')
    write(root, f"{lite}/mutable_op_resolver.cc", "// resolver\n")
    write(root, f"{lite}/minimal_logging_default.cc", "// logging\n")
    write(root, f"{lite}/kernels/conv.cc", "// a kernel nobody includes\n")
    # What the probe itself includes.
    write(root, f"{lite}/model.h", f'#include "{lite}/interpreter.h"\n')
    write(root, f"{lite}/mutable_op_resolver.h", "// resolver\n")
    write(root, f"{lite}/core/api/error_reporter.h", "// reporter\n")
    write(root, f"{lite}/core/api/error_reporter.cc", f'#include "{lite}/core/api/error_reporter.h"\n')
    write(root, f"{lite}/nnapi/NeuralNetworksTypes.h", "// types\n")
    write(root, f"{lite}/nnapi/nnapi_implementation.h", "// NnApi\n")
    write(root, f"{lite}/nnapi/nnapi_implementation.cc", f'#include "{lite}/nnapi/nnapi_implementation.h"\n')
    write(root, f"{lite}/nnapi/nnapi_implementation_disabled.cc", "// other platforms\n")
    return root


def fake_toolchain(fingerprint: str = "f1") -> Toolchain:
    return Toolchain(
        "g++", "gcc", "flatc", Path("/usr/include"), "25.12.19", ("-labsl_strings",), fingerprint, "test"
    )


def test_source_list_is_the_include_closure(tmp_path):
    tree = find_lite_tree(mini_tree(tmp_path))
    s = collect_sources(tree)
    lite = "tensorflow/lite"
    assert s.sources == sorted(
        [
            f"{lite}/delegates/nnapi/nnapi_delegate.cc",
            f"{lite}/util.cc",
            f"{lite}/c/common.c",
            f"{lite}/interpreter_builder.cc",
            f"{lite}/interpreter.cc",
            f"{lite}/mutable_op_resolver.cc",
            f"{lite}/minimal_logging_default.cc",
            f"{lite}/core/api/error_reporter.cc",
            f"{lite}/nnapi/nnapi_implementation.cc",
        ]
    )
    assert f"{lite}/kernels/conv.cc" not in s.sources  # nothing includes it
    assert f"{lite}/delegates/nnapi/nnapi_delegate_disabled.cc" not in s.sources
    assert f"{lite}/nnapi/nnapi_implementation_disabled.cc" not in s.sources
    assert s.generated == [(f"{lite}/schema/schema_generated.h", f"{lite}/schema/schema.fbs")]
    assert "absl/strings/str_cat.h" in s.external
    assert s.closure_of(f"{lite}/util.cc") == [
        f"{lite}/util.cc",
        f"{lite}/schema/schema_generated.h",
        f"{lite}/util.h",
    ]


def test_litert_layout_and_probe_header(tmp_path):
    tree = find_lite_tree(mini_tree(tmp_path, "tflite"))
    assert tree.lite == "tflite" and tree.kind == "litert"
    s = collect_sources(tree)
    assert all(f.startswith("tflite/") for f in s.sources)
    header = probe_header(s)
    assert '#include "tflite/delegates/nnapi/nnapi_delegate.h"' in header
    assert "tensorflow/lite" not in header


def test_a_tree_without_a_delegate_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="no NNAPI delegate here"):
        find_lite_tree(tmp_path)
    with pytest.raises(UsageError, match="no such directory"):
        find_lite_tree(tmp_path / "missing")


def test_build_key_follows_the_closure_and_nothing_else(tmp_path):
    root = mini_tree(tmp_path)
    tree = find_lite_tree(root)
    key = build_key(collect_sources(tree), fake_toolchain())
    (root / "tensorflow/lite/kernels/conv.cc").write_text("// changed, but not built\n")
    assert build_key(collect_sources(tree), fake_toolchain()) == key
    (root / "tensorflow/lite/util.h").write_text(
        '#include "tensorflow/lite/schema/schema_generated.h"\n//x\n'
    )
    changed = build_key(collect_sources(tree), fake_toolchain())
    assert changed != key
    assert build_key(collect_sources(tree), fake_toolchain("another compiler")) != changed
    (root / "tensorflow/lite/schema/schema.fbs").write_text("table Model { a: int; }\nroot_type Model;\n")
    assert build_key(collect_sources(tree), fake_toolchain()) != changed


def test_object_keys_let_a_patched_delegate_reuse_everything_else(tmp_path):
    root = mini_tree(tmp_path)
    tree = find_lite_tree(root)
    s = collect_sources(tree)
    flags = ["-std=c++17", "-O1"]
    before = {u: object_key(s, u, flags, fake_toolchain(), build_mod._Hasher(root)) for u in s.sources}
    delegate = root / "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"
    delegate.write_text(delegate.read_text() + "// patched\n")
    s2 = collect_sources(tree)
    after = {u: object_key(s2, u, flags, fake_toolchain(), build_mod._Hasher(root)) for u in s2.sources}
    changed = sorted(u for u in s.sources if before[u] != after[u])
    assert changed == ["tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"]
    # A header change reaches every unit that includes it, and only those.
    (root / "tensorflow/lite/interpreter.h").write_text("// changed\n")
    s3 = collect_sources(tree)
    again = {u: object_key(s3, u, flags, fake_toolchain(), build_mod._Hasher(root)) for u in s3.sources}
    assert sorted(u for u in s3.sources if again[u] != after[u]) == [
        "tensorflow/lite/interpreter.cc",
        "tensorflow/lite/interpreter_builder.cc",
    ]
    assert build_mod.object_key.__doc__


def test_schema_fixup_keeps_deprecated_members_as_flatc_can_read():
    recipe = load_recipe()
    text = (
        "enum BuiltinOperator : int32 {\n  ADD = 0,\n  REDUCE_WINDOW = 205 (deprecated),\n}\n"
        "union BuiltinOptions {\n  AddOptions,\n  ReduceWindowOptions (deprecated),\n}\n"
        "table ReduceWindowOptions (deprecated) {\n  new_height: int (deprecated);\n}\n"
    )
    fixed = recipe.fix_schema(text)
    assert "  REDUCE_WINDOW = 205,\n" in fixed and "  ReduceWindowOptions,\n" in fixed
    # Table and field annotations are flatc's own syntax: kept.
    assert "table ReduceWindowOptions (deprecated) {" in fixed and "new_height: int (deprecated);" in fixed


def test_failures_come_out_as_one_line(tmp_path):
    recipe = load_recipe()
    tree = find_lite_tree(mini_tree(tmp_path))
    assert explain_failure(
        "x.cc:1:10: fatal error: absl/strings/str_cat.h: No such file or directory\n"
        " #include ...\ncompilation terminated.",
        recipe,
        tree,
    ) == ("absl/strings/str_cat.h not found (apt-get install libabsl-dev)")
    assert "tree lacks a file" in explain_failure(
        "a.cc:3:10: fatal error: tensorflow/lite/gone.h: No such file or directory", recipe, tree
    )
    line = explain_failure(
        f"{tree.root}/tensorflow/lite/util.cc:12:5: error: 'x' was not declared\n  12 | x;\n", recipe, tree
    )
    assert line == "tensorflow/lite/util.cc:12: 'x' was not declared"
    assert (
        explain_failure(
            "/usr/bin/ld: a.o: in function `f':\nundefined reference to `tflite::Foo()'\n", recipe, tree
        )
        == "link: undefined reference to tflite::Foo()"
    )


def test_missing_tools_name_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(ToolchainMissing, match="apt-get install g\\+\\+"):
        find_toolchain()
    monkeypatch.delenv("CXX")
    compiler = tmp_path / "g++"
    compiler.write_text("#!/bin/sh\necho 'g++ (fake) 12'\n")
    compiler.chmod(compiler.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "gcc").write_bytes(compiler.read_bytes())
    (tmp_path / "gcc").chmod(0o755)
    monkeypatch.setenv("FLATC", str(tmp_path / "flatc"))
    (tmp_path / "flatc").write_text("#!/bin/sh\necho 'flatc version 25.1.1'\n")
    (tmp_path / "flatc").chmod(0o755)
    headers = tmp_path / "include"
    (headers / "flatbuffers").mkdir(parents=True)
    (headers / "flatbuffers/base.h").write_text(
        "#define FLATBUFFERS_VERSION_MAJOR 2\n"
        "#define FLATBUFFERS_VERSION_MINOR 0\n"
        "#define FLATBUFFERS_VERSION_REVISION 8\n"
    )
    monkeypatch.setenv("FLATBUFFERS_INCLUDE", str(headers))
    with pytest.raises(ToolchainMissing, match="one version.*flatc 25.1.1.*headers 2.0.8"):
        find_toolchain()


FAKE_PROBE = """#!{python}
import sys
args = sys.argv[1:]
apis = args[args.index("--android-api") + 1].split(",")
models = args[args.index("--") + 1:]
for m in models:
    if m.endswith("crash.tflite"):
        sys.stdout.flush()
        import os, signal
        os.kill(os.getpid(), signal.SIGSEGV)
    for a in apis:
        print('{{"model": "%s", "android_api": %s, "status": "ok", "hook": true, "nodes": '
              '[{{"index": 1, "type": "TfLiteNnapiDelegate", "ops": [0], "outputs": [1]}}], "refused": [], '
              '"messages": []}}' % (m, a), flush=True)
"""


def test_a_probe_that_crashes_costs_one_case_not_the_run(tmp_path):
    probe = tmp_path / "nnapi_probe"
    probe.write_text(FAKE_PROBE.format(python=sys.executable))
    probe.chmod(0o755)
    models = [tmp_path / n for n in ("a.tflite", "crash.tflite", "b.tflite")]
    out = run_binary(probe, models, [29, 30], ProbeSettings())
    assert [(Path(c["model"]).name, c["android_api"], c["status"]) for c in out] == [
        ("a.tflite", 29, "ok"),
        ("a.tflite", 30, "ok"),
        ("crash.tflite", 29, "crash"),
        ("crash.tflite", 30, "crash"),
        ("b.tflite", 29, "ok"),
        ("b.tflite", 30, "ok"),
    ]
    assert "SIGSEGV" in out[2]["messages"][0]


def test_probe_answers_become_plans_or_failures(pascal_513_os8):
    model = load_model(pascal_513_os8)
    n = len(model.operators)
    case = {
        "status": "ok",
        "hook": True,
        "nodes": [
            {"index": n, "type": "TfLiteNnapiDelegate", "ops": list(range(n)), "outputs": list(model.outputs)}
        ],
        "refused": [],
        "messages": ["INFO: Replacing 71 node(s)"],
    }
    plan = to_result(case, model, DelegateOptions(android_api=29), {"tree": "t", "version": "2.9.2"})
    assert plan.single_partition and plan.engine == "probe" and plan.nodes[0].name == "[ArgMax]"
    assert plan.to_json()["engine"] == "probe" and plan.to_json()["delegate_log"] == case["messages"]
    failed = to_result(
        {"status": "delegate_error", "messages": ["INFO: Created", "failed to prepare"]},
        model,
        DelegateOptions(android_api=29),
    )
    assert isinstance(failed, ProbeFailure) and not failed.single_partition
    assert failed.message == "failed to prepare"
    assert json.loads(json.dumps(failed.to_json()))["status"] == "delegate_error"


def test_the_probe_source_ships_with_the_package():
    native = build_mod.native_dir()
    assert (native / "nnapi_probe.cc").is_file()
    assert (native / "shims/ruy/denormal.h").is_file()
    assert os.access(native / "nnapi_probe.cc", os.R_OK)
