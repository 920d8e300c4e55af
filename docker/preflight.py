"""The inputs stage: every build-arg checked before anything is downloaded or built.

    python3 docker/preflight.py --out inputs.json NAME=VALUE ...      # the Dockerfile passes its build-args

The Dockerfile's ``inputs`` stage runs this first (it comes before every stage that downloads, and the
sources, android-sdk and export stages copy its output, so BuildKit orders it first too). A missing or
malformed input stops the build here, in seconds, with one line naming the build-arg; before, a missing
checkpoint sha256 surfaced in the export stage, which the classic builder reaches after the Bazel builds.

Checked: WEIGHTS (``published``, the default, needs nothing; ``checkpoint`` needs the three checkpoint
sha256 unless the variant table pins them), TF_DIR / TF_COMMIT / TF_VERSION, MODELS_DIR / MODELS_COMMIT, the
optional *_DIR_COMMIT, BAZEL_PINS, the NDK checksums and VERIFY_API_LEVELS. Standard library only (it runs
with the base image's python3). Exit 0 all good (writes ``--out``), 1 a build-arg is missing or malformed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

try:
    import tomllib
except ImportError:  # pragma: no cover - the image has Python 3.11
    tomllib = None

HERE = Path(__file__).resolve().parent
VARIANTS = HERE.parent / "tools" / "deeplab_nnapi" / "data" / "variants.toml"

SHA256 = re.compile(r"^[0-9a-f]{64}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
CHECKSUM = re.compile(r"^(sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
WEIGHTS = ("published", "checkpoint")
#: build-arg -> checkpoint name of the variant table
CHECKPOINT_ARGS = {
    "CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256": "pascal_train_aug_8bit",
    "CKPT_CITYSCAPES_TRAIN_SHA256": "cityscapes_train",
    "CKPT_ADE20K_TRAIN_SHA256": "ade20k_train",
}


def table_pins(path: Path = VARIANTS) -> Dict[str, str]:
    """The checkpoint sha256 the variant table pins (empty string: not pinned)."""
    if tomllib is None or not path.is_file():
        return {}
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: str(c.get("sha256") or "") for name, c in table.get("checkpoint", {}).items()}


def _context_path(name: str, value: str) -> Optional[str]:
    if value.startswith("/") or ".." in Path(value).parts:
        return f"--build-arg {name}={value}: must be a directory inside the build context (a relative path)"
    return None


def check(args: Dict[str, str], pins: Optional[Dict[str, str]] = None) -> List[str]:
    """Every problem with the build-args, one phrase each naming the build-arg ([] = all good)."""
    pins = table_pins() if pins is None else pins
    get = lambda name: (args.get(name) or "").strip()  # noqa: E731
    problems: List[str] = []

    weights = get("WEIGHTS") or "published"
    if weights not in WEIGHTS:
        problems.append(f"--build-arg WEIGHTS={weights}: expected one of {', '.join(WEIGHTS)}")
    elif weights == "checkpoint":
        missing = []
        for arg, name in CHECKPOINT_ARGS.items():
            value, pinned = get(arg).lower(), pins.get(name, "")
            if not value and not pinned:
                missing.append(f"--build-arg {arg}=<sha256>")
            elif value and not SHA256.match(value):
                problems.append(f"--build-arg {arg}={value}: not a sha256 (64 hex digits)")
            elif value and pinned and value != pinned.lower():
                problems.append(f"--build-arg {arg}={value}: the variant table pins {pinned}")
        if missing:
            problems.append(f"WEIGHTS=checkpoint needs {' '.join(missing)} (the checkpoint archives' sha256: "
                            "none is published, so check what you download; or leave WEIGHTS at published, "
                            "the default)")
    if get("WEIGHTS_DIR"):
        if weights != "published":
            problems.append("--build-arg WEIGHTS_DIR applies only with WEIGHTS=published")
        problems += filter(None, [_context_path("WEIGHTS_DIR", get("WEIGHTS_DIR"))])

    for tree, commit_arg, version_arg in (("TF_DIR", "TF_COMMIT", "TF_VERSION"),
                                          ("MODELS_DIR", "MODELS_COMMIT", None)):
        if get(tree):
            problems += filter(None, [_context_path(tree, get(tree))])
            stated = get(f"{tree}_COMMIT")
            if stated and not COMMIT.match(stated):
                problems.append(f"--build-arg {tree}_COMMIT={stated}: not a full 40-hex commit id")
        else:
            if not COMMIT.match(get(commit_arg)):
                problems.append(f"--build-arg {commit_arg}={get(commit_arg)}: not a full 40-hex commit id "
                                f"(or give a local tree with --build-arg {tree})")
            if version_arg and not re.match(r"^2\.\d+(\.\d+)?$", get(version_arg)):
                problems.append(f"--build-arg {version_arg}={get(version_arg)}: expected 2.N or 2.N.M")
        if not get(tree) and get(f"{tree}_COMMIT"):
            problems.append(f"--build-arg {tree}_COMMIT applies only with {tree}")

    for item in get("BAZEL_PINS").split():
        version, sep, digest = item.partition("=")
        if not sep or not re.match(r"^\d+\.\d+\.\d+$", version) or not SHA256.match(digest.lower()):
            problems.append(f"--build-arg BAZEL_PINS: {item!r} is not VERSION=<sha256>")
    for prefix in ("ANDROID_NDK", "LITERT_ANDROID_NDK"):
        value = get(f"{prefix}_CHECKSUM").lower()
        if value and not CHECKSUM.match(value):
            problems.append(f"--build-arg {prefix}_CHECKSUM={value}: expected sha1:, sha256: or sha512:<hex>")

    levels = get("VERIFY_API_LEVELS").split()
    if not levels or not all(x.isdigit() and 27 <= int(x) <= 35 for x in levels):
        problems.append(f"--build-arg VERIFY_API_LEVELS={get('VERIFY_API_LEVELS')!r}: API levels 27..35, "
                        "separated by spaces")
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="where to write the accepted inputs (JSON)")
    ap.add_argument("args", nargs="*", metavar="NAME=VALUE")
    ns = ap.parse_args(argv)
    given = {}
    for pair in ns.args:
        name, sep, value = pair.partition("=")
        if not sep:
            ap.error(f"{pair!r}: expected NAME=VALUE")
        given[name] = value
    problems = check(given)
    if problems:
        print("preflight: error: " + "; ".join(problems), file=sys.stderr)
        return 1
    weights = given.get("WEIGHTS") or "published"
    summary = {"weights": weights, **{k: v for k, v in sorted(given.items()) if v}}
    if ns.out:
        ns.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tf = f"TF_DIR={given['TF_DIR']}" if given.get("TF_DIR") else f"TF_COMMIT={given.get('TF_COMMIT')}"
    models = (f"MODELS_DIR={given['MODELS_DIR']}" if given.get("MODELS_DIR")
              else f"MODELS_COMMIT={given.get('MODELS_COMMIT')}")
    print(f"preflight: inputs ok: WEIGHTS={weights}, {tf}, {models}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
