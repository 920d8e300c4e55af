"""What the toolchain stage does with the patched tree: Bazel version, NDK, configure, benchmark_model target.

    python3 docker/toolchain_plan.py describe --tree DIR --layout LAYOUT       # JSON, for sources.json
    python3 docker/toolchain_plan.py plan --sources sources.json --bazel-pins "V=SHA256 ..." \
        --ndk "r21e android-ndk-r21e-linux-x86_64.zip sha1:..." --litert-ndk "r26d ... sha256:..." --out ENV

``describe`` reads the tree (the sources stage runs it, so the later stages need not copy the tree to
decide): its ``.bazelversion``, whether it has a Bazel workspace, ``configure`` and the benchmark's BUILD.
``plan`` turns that into the toolchain stage's settings, a shell file of ``NAME='value'`` lines (sourced by
the stage), or refuses in one line naming the build-arg to set. The android-sdk stage runs ``plan`` before
it downloads anything, so a tree the stage cannot build stops the build in minutes, not after the NDK.

Layouts (read from the trees; see docs/container.md):

* ``tensorflow``: TensorFlow 2.x. ``./configure`` (configure.py, answers from the environment), then
  ``//tensorflow/lite/tools/benchmark:benchmark_model`` with ``--config=android_arm64`` and for the host. The
  tree's ``.bazelversion`` names Bazel (TF 2.9: 5.0.0, TF 2.14: 6.1.0); configure.py accepts NDK 19-21
  (``_SUPPORTED_ANDROID_NDK_VERSIONS``): NDK r21e.
* ``litert``: google-ai-edge/LiteRT. Its own workspace, ``./configure`` (writing
  ``.litert_configure.bazelrc``), ``//tflite/tools/benchmark:benchmark_model`` (whose NNAPI provider links
  ``//tflite/delegates/nnapi``, the patched delegate), Bazel from its ``.bazelversion`` (7.7.0 at
  LiteRT@f6745779). Its WORKSPACE registers the NDK through rules_android_ndk ("Need latest
  rules_android_ndk to use NDK 26+"), and LiteRT's CI builds Android with NDK r26d
  (ci/tflite-android.Dockerfile): NDK r26d.
* ``tflite-only`` (a delegate without a workspace) cannot be built by Bazel: refused.

Standard library only: the android-sdk stage runs it with the image's python3.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

#: Per layout: the benchmark target, its BUILD file and binary, which NDK build-args apply.
LAYOUTS: Dict[str, Dict[str, str]] = {
    "tensorflow": {
        "target": "//tensorflow/lite/tools/benchmark:benchmark_model",
        "build_file": "tensorflow/lite/tools/benchmark/BUILD",
        "binary": "bazel-bin/tensorflow/lite/tools/benchmark/benchmark_model",
        "ndk": "ANDROID_NDK_*",
    },
    "litert": {
        "target": "//tflite/tools/benchmark:benchmark_model",
        "build_file": "tflite/tools/benchmark/BUILD",
        "binary": "bazel-bin/tflite/tools/benchmark/benchmark_model",
        "ndk": "LITERT_ANDROID_NDK_*",
    },
}
WORKSPACE_FILES = ("WORKSPACE", "WORKSPACE.bazel", "MODULE.bazel")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHECKSUM = re.compile(r"^(sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


class Refused(Exception):
    """The toolchain stage cannot build this tree (one line)."""


def describe(tree: Path, layout: str) -> dict:
    """What the toolchain stage needs to know about ``tree`` (a patched TensorFlow or LiteRT tree)."""
    tree = Path(tree)
    spec = LAYOUTS.get(layout, {})
    version_file = tree / ".bazelversion"
    bazel = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else None
    return {
        "layout": layout,
        "bazel_version": bazel or None,
        "workspace": next((f for f in WORKSPACE_FILES if (tree / f).is_file()), None),
        "configure": (tree / "configure").is_file(),
        "benchmark_build": bool(spec) and (tree / spec["build_file"]).is_file(),
        "target": spec.get("target"),
        "binary": spec.get("binary"),
    }


def parse_pins(text: str) -> Dict[str, str]:
    """``"6.1.0=<sha256> 7.7.0=<sha256>"`` to a dict; a malformed entry is refused naming BAZEL_PINS."""
    pins = {}
    for item in text.split():
        version, sep, digest = item.partition("=")
        if not sep or not VERSION.match(version) or not SHA256.match(digest.lower()):
            raise Refused(f"--build-arg BAZEL_PINS: {item!r} is not "
                          "VERSION=<sha256 of bazel-VERSION-linux-x86_64>")
        pins[version] = digest.lower()
    return pins


def parse_ndk(text: str, arg: str) -> Dict[str, str]:
    parts = text.split()
    if len(parts) != 3 or not CHECKSUM.match(parts[2].lower()):
        raise Refused(f"{arg}: expected 'RELEASE FILE ALGORITHM:HEX', got {text!r}")
    return {"release": parts[0], "file": parts[1], "checksum": parts[2].lower()}


def plan(sources: dict, pins: Dict[str, str], ndk: Dict[str, str],
         litert_ndk: Dict[str, str]) -> Dict[str, str]:
    """The toolchain stage's settings for the tree of ``sources`` (sources.json), or :class:`Refused`."""
    tf = sources.get("tensorflow") or {}
    info = tf.get("toolchain") or {}
    layout = info.get("layout") or tf.get("layout")
    name = tf.get("name") or "the TensorFlow tree"
    if layout not in LAYOUTS:
        raise Refused(f"toolchain: {name} is a {layout or 'unknown'} tree (no Bazel workspace of "
                      "TensorFlow or LiteRT): benchmark_model cannot be built from it; build --target proof "
                      "for the models, the probe and the report")
    missing = [what for what, ok in (("a Bazel workspace (WORKSPACE)", info.get("workspace")),
                                     ("./configure", info.get("configure")),
                                     (LAYOUTS[layout]["build_file"], info.get("benchmark_build"))) if not ok]
    if missing:
        raise Refused(f"toolchain: {name} ({layout}) has no {', no '.join(missing)}: benchmark_model cannot "
                      "be built from it; build --target proof for the models, the probe and the report")
    bazel = info.get("bazel_version")
    if not bazel:
        raise Refused(f"toolchain: {name} has no .bazelversion: the Bazel it needs is unknown; add one to "
                      "the tree and its sha256 to --build-arg BAZEL_PINS")
    if bazel not in pins:
        have = ", ".join(sorted(pins)) or "none"
        raise Refused(f"toolchain: {name} asks for Bazel {bazel} (.bazelversion) but --build-arg BAZEL_PINS "
                      f"pins {have}: add {bazel}=<sha256 of bazel-{bazel}-linux-x86_64>")
    chosen = litert_ndk if layout == "litert" else ndk
    return {
        "LAYOUT": layout,
        "BAZEL_VERSION": bazel,
        "BAZEL_SHA256": pins[bazel],
        "BENCHMARK_TARGET": LAYOUTS[layout]["target"],
        "BENCHMARK_BINARY": LAYOUTS[layout]["binary"],
        "NDK_RELEASE": chosen["release"],
        "NDK_FILE": chosen["file"],
        "NDK_CHECKSUM": chosen["checksum"],
        "NDK_ARGS": LAYOUTS[layout]["ndk"],
    }


def shell(settings: Dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in settings.items())


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("describe", help="print what the toolchain stage needs to know about a tree (JSON)")
    d.add_argument("--tree", type=Path, required=True)
    d.add_argument("--layout", required=True)
    p = sub.add_parser("plan", help="write the toolchain stage's settings, or refuse in one line")
    p.add_argument("--sources", type=Path, required=True, help="sources.json of the sources stage")
    p.add_argument("--bazel-pins", default="", help="'VERSION=SHA256 ...' (build-arg BAZEL_PINS)")
    p.add_argument("--ndk", required=True, help="'RELEASE FILE CHECKSUM' for TensorFlow trees")
    p.add_argument("--litert-ndk", required=True, help="'RELEASE FILE CHECKSUM' for LiteRT trees")
    p.add_argument("--out", type=Path, help="shell file to write (default: stdout)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "describe":
            print(json.dumps(describe(args.tree, args.layout), indent=2))
            return 0
        sources = json.loads(args.sources.read_text(encoding="utf-8"))
        settings = plan(sources, parse_pins(args.bazel_pins),
                        parse_ndk(args.ndk, "--build-arg ANDROID_NDK_*"),
                        parse_ndk(args.litert_ndk, "--build-arg LITERT_ANDROID_NDK_*"))
    except Refused as exc:
        print(f"toolchain_plan: error: {exc}", file=sys.stderr)
        return 1
    text = shell(settings)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    lines: List[str] = [f"{k}={v}" for k, v in settings.items() if k in ("LAYOUT", "BAZEL_VERSION",
                                                                        "BENCHMARK_TARGET", "NDK_RELEASE")]
    print("toolchain_plan: " + ", ".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
