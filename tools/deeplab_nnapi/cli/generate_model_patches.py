"""generate_model_patches: write patches/models/ from rule.toml over tensorflow/models' history."""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from deeplab_nnapi.errors import EXIT_FAIL, UsageError
from deeplab_nnapi.patching.generate import FINAL_UPSTREAM, generate
from deeplab_nnapi.patching.patchset import write_patch_set
from deeplab_nnapi.patching.rulefile import load_rule
from deeplab_nnapi.resources import patches_dir

from . import ArgumentParser, emit_json, run

PROG = "generate_model_patches"

DESCRIPTION = """\
Generate the tensorflow/models patches from the rule (patches/models/rule.toml): read every commit
reachable from --ref that changed one of the rule's files in a tensorflow/models clone (a fork with the
upstream history will do; bare is fine), write one git format-patch file per distinct text of each file
the rule changes, and verify every commit (git am of its set, every rule site done, a second run reads as
applied, reverse restores the tree). Writes patches/models/<file>/<blob>.patch, patches/models/manifest.toml
and patches/models/README.md. The output is deterministic.
"""

EPILOG = """\
exit codes: 0 written (or, with --check, the committed files are what the rule makes); 1 a commit failed
verification or --check found a difference; 2 bad usage or input.

examples:
  %(prog)s --git-dir ~/src/models                      # regenerate patches/models/
  %(prog)s --git-dir ~/src/models --check              # prove the committed patches are current
"""


def build_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--git-dir",
        type=Path,
        required=True,
        metavar="PATH",
        help="a tensorflow/models clone with the upstream history (work tree or bare)",
    )
    ap.add_argument(
        "--ref",
        default=FINAL_UPSTREAM,
        metavar="COMMIT",
        help="walk the history from this commit (default: the final upstream DeepLab state %(default)s)",
    )
    ap.add_argument(
        "--rule",
        type=Path,
        default=patches_dir() / "models" / "rule.toml",
        metavar="FILE",
        help="the rule file (default: models/rule.toml of --patches-dir's default)",
    )
    ap.add_argument(
        "--patches-dir",
        type=Path,
        default=patches_dir(),
        metavar="DIR",
        help="the patch set (default: the tools' own: $DEEPLAB_NNAPI_PATCHES, else the checkout's patches/)",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 unless the files under --patches-dir are what the rule makes",
    )
    ap.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    return ap


def _diff(a: Path, b: Path) -> list:
    out = []
    for sub in sorted(
        {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
        | {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    ):
        pa, pb = a / sub, b / sub
        if not pa.is_file() or not pb.is_file() or not filecmp.cmp(pa, pb, shallow=False):
            out.append(str(sub))
    return out


def _body(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    log = None if (args.quiet or args.json) else (lambda m: print(m, file=sys.stderr, flush=True))
    rule = load_rule(args.rule)
    gen = generate(args.git_dir, rule, args.ref, log=log)
    differs = []
    if args.check:
        with tempfile.TemporaryDirectory(prefix="deeplab-nnapi-gen-check-") as tmp:
            t = Path(tmp)
            (t / "models").mkdir()
            # the rule's relative location must be the same for the manifest text to compare
            rule_copy = t / args.rule.resolve().relative_to(args.patches_dir.resolve())
            rule_copy.parent.mkdir(parents=True, exist_ok=True)
            rule_copy.write_bytes(args.rule.read_bytes())
            gen.rule = load_rule(rule_copy)
            write_patch_set(gen, t)
            committed = args.patches_dir / "models"
            ours = {fr.slug for fr in rule.files} | {"manifest.toml", "README.md", "rule.toml"}
            tmp_models = t / "models"
            for p in committed.iterdir():
                if p.name not in ours:
                    continue
            differs = [d for d in _diff(tmp_models, committed) if d.split("/")[0] in ours]
    else:
        if not gen.ok:
            pass
        else:
            write_patch_set(gen, args.patches_dir)
    failed = [v for v in gen.verifications if not v.ok]
    result = {
        "ref": gen.ref,
        "commits": len(gen.states),
        "patches": [
            {
                "name": v.name,
                "file": v.relpath,
                "pre_blob": v.pre_blob,
                "post_blob": v.post_blob,
                "sites": v.sites,
                "commits": [s.commit for s in v.commits],
            }
            for v in gen.variants
        ],
        "verified": [
            {
                "commit": v.state.commit,
                "date": v.state.date,
                "ok": v.ok,
                "patches": v.patches,
                "detail": v.detail,
            }
            for v in gen.verifications
        ],
        "check": args.check,
        "differs": differs,
        "ok": not failed and not differs,
    }
    if args.json:
        emit_json(result)
    elif not args.quiet:
        print(
            f"{len(gen.variants)} patches for {len(gen.states)} commits; "
            f"{len(gen.verifications) - len(failed)} verified, {len(failed)} failed"
            + (
                f"; differs from {args.patches_dir}/models: {', '.join(differs)}"
                if differs
                else ("; committed files are current" if args.check else "")
            )
        )
    if failed:
        if not args.json:
            print(f"{PROG}: {failed[0].state.commit[:12]}: {failed[0].detail}", file=sys.stderr)
        return EXIT_FAIL
    if differs:
        return EXIT_FAIL
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return run(PROG, _body, argv)
    except UsageError as exc:  # pragma: no cover - run() handles it
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
