"""apply_patches: apply deeplab-nnapi's patches to a TensorFlow tree and/or a tensorflow/models tree."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from packaging.version import Version

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.clone import DEFAULT_MODELS_URL, DEFAULT_TF_URL, clone
from deeplab_nnapi.patching.engine import RunOptions, TreeJob, run_jobs
from deeplab_nnapi.patching.manifest import Manifest, Patch, load_manifest
from deeplab_nnapi.patching.report import RunReport
from deeplab_nnapi.patching.tfversion import VersionRequest, parse_request

from . import ArgumentParser, emit_json, run

PROG = "apply_patches"

DESCRIPTION = """\
Make a TensorFlow 2.x (or LiteRT) tree delegate DeepLab's large quantized AVERAGE_POOL_2D to NNAPI, and
make tensorflow/models' DeepLab build align_corners=False resizes and an int32 argmax, by applying the
versioned patches listed in patches/manifest.toml.

TensorFlow: the variant is chosen from the tree's own version (tensorflow/core/public/version.h or
tensorflow/tf_version.bzl), which must match --tf-version. A tree without a version file (a tflite-only
or trimmed vendor tree) is taken to be --tf-version 2.N[.M], or with 2.x the delegate's text decides (its
shapes are distinct). A LiteRT tree (tflite/delegates/nnapi/) is recognised by its layout. tensorflow/models:
one patch per upstream text of each file, generated from patches/models/rule.toml; a fork whose text no
patch fits is patched by the rule itself, and a file counts as patched only when every call site is.

Everything is worked out in a scratch index first; the trees are written only when every patch of every
tree goes through, through a journal: a run killed half-way is finished (or, by a --reverse run, rolled
back) by the next run, which says so. Running twice is harmless: the second run reports
"already-applied" and changes nothing.
"""

EPILOG = """\
symbolic links (for every mode, both kinds of tree): a touched file that is (or lies under) a symlink
whose target is inside the tree is patched through it: the target is read and written, the link kept,
and the report names both. A link leaving the tree is refused unless --follow-symlinks (never with
--commit); a dangling link, a loop, a directory, a file or folder that cannot be read (or, when it would
change, written) is refused with one line naming it. fixed-upstream and not-needed are claimed only on
text that was read and shows it (see patches/manifest.toml); a file that changes during the run is an
error.

strategies reported per patch: clean, clean-ignore-whitespace (a re-indented fork), 3way (drifted
vendor tree, pre-image blob in the repository's history), rule (models: no patch fits, the rule edited the
calls), already-applied, fixed-upstream (the check is already gone), not-needed (nothing to change in that
file), not-present (an optional file the tree's layout lacks).

exit codes: 0 done / already applied / would apply (--check); 1 a patch does not apply (nothing
changed), or --check found an interrupted run; 2 bad usage or input (unknown version, dirty tree, sha256
mismatch, path outside the tree, a refused symlink, an unreadable or unwritable file, a file changed during
the run).

examples:
  %(prog)s --tf-version 2.x --tf-dir ~/src/tensorflow
  %(prog)s --tf-version 2.4 --tf-dir ~/src/tensorflow --models-dir ~/src/models --check
  %(prog)s --tf-version 2.14 --tf-dir ~/src/tflite-only-tree       # no version file: 2.14 is trusted
  %(prog)s --tf-version 2.x --tf-dir ~/src/LiteRT                   # LiteRT: chosen by the delegate's text
  %(prog)s --clone-tf v2.4.1 --tf-version 2.4.1 --tf-dir /src/tensorflow
  %(prog)s --tf-version 2.x --tf-dir fork/ --commit          # one commit per patch, like git am
  %(prog)s --list --tf-version 2.4
"""


def build_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t = ap.add_argument_group("trees")
    t.add_argument(
        "--tf-version",
        metavar="2.x|2.N|2.N.M",
        help="TensorFlow version the --tf-dir tree must be (required with --tf-dir)",
    )
    t.add_argument(
        "--tf-dir", type=Path, metavar="PATH", help="TensorFlow source tree (git checkout or plain dir)"
    )
    t.add_argument("--models-dir", type=Path, metavar="PATH", help="tensorflow/models source tree")
    c = ap.add_argument_group("cloning (used by the Docker build)")
    c.add_argument("--clone-tf", metavar="TAG", help="first clone TensorFlow at TAG (shallow) into --tf-dir")
    c.add_argument(
        "--tf-url", default=DEFAULT_TF_URL, metavar="URL", help="TensorFlow repository (default: %(default)s)"
    )
    c.add_argument(
        "--clone-models",
        metavar="COMMIT",
        help="first clone tensorflow/models at COMMIT (full id, tag or branch) into --models-dir",
    )
    c.add_argument(
        "--models-url",
        default=DEFAULT_MODELS_URL,
        metavar="URL",
        help="tensorflow/models repository (default: %(default)s)",
    )
    m = ap.add_argument_group("mode")
    m.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 0 if every patch would apply or is already applied",
    )
    m.add_argument("--reverse", action="store_true", help="take the patches out again")
    m.add_argument(
        "--commit",
        action="store_true",
        help="commit each patch (author, date and message from the patch, like git am)",
    )
    m.add_argument(
        "--list", action="store_true", help="list the manifest's patches (for --tf-version if given)"
    )
    m.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="patch through a symlink whose target is outside the tree (a link inside the tree is always "
        "followed; without this flag one that leaves it is refused)",
    )
    m.add_argument(
        "--allow-dirty",
        action="store_true",
        help="apply even when files the patches touch have local changes (not with --commit)",
    )
    o = ap.add_argument_group("input/output")
    o.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="patch manifest (default: $DEEPLAB_NNAPI_PATCHES/manifest.toml or patches/manifest.toml)",
    )
    o.add_argument("--json", action="store_true", help="print a machine-readable report on stdout")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return ap


def _possible_versions(request: VersionRequest) -> List[Version]:
    if request.minor is None:
        return [Version(f"2.{n}.{p}") for n in range(0, 60) for p in range(0, 12)]
    if request.patch is None:
        return [Version(f"2.{request.minor}.{p}") for p in range(0, 30)]
    return [Version(f"2.{request.minor}.{request.patch}")]


def _list_patches(manifest: Manifest, request: Optional[VersionRequest]) -> List[Patch]:
    out = []
    for p in sorted(manifest.patches, key=lambda p: (p.target != "tensorflow", p.order, p.index)):
        if request is not None and p.target == "tensorflow" and str(p.versions):
            if not any(p.matches(v) for v in _possible_versions(request)):
                continue
        out.append(p)
    if request is not None and not any(p.target == "tensorflow" for p in out):
        raise UsageError(
            f"no TensorFlow patch for {request.text}; the manifest supports TensorFlow "
            + "; ".join(manifest.supported("tensorflow"))
        )
    return out


_VERSION_TOKEN = re.compile(r"\b(?:TF|TensorFlow|LiteRT tag) v?(\d+\.\d+(?:\.\d+)?(?:-?rc\d+)?)\b")
_COMMIT_TOKEN = re.compile(r"([\w.-]+/[\w.-]+)@([0-9a-f]{7,40})")


def _short_verified(entries, width: int = 40) -> str:
    """A compact VERIFIED AGAINST cell: the TF versions (or repo@commit) each entry names."""
    tokens = []
    for e in entries:
        m = _VERSION_TOKEN.search(e)
        if m:
            tok = m.group(1)
        else:
            c = _COMMIT_TOKEN.search(e)
            if c is None:
                continue
            tok = f"{c.group(1)}@{c.group(2)[:8]}"
        if tok not in tokens:
            tokens.append(tok)
    text = ", ".join(tokens) or "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def _print_list(patches: List[Patch], as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "patches": [
                    {
                        "name": p.name,
                        "target": p.target,
                        "file": p.file,
                        "versions": p.versions_raw,
                        "order": p.order,
                        "touches": list(p.touches),
                        "sha256": p.sha256,
                        "purpose": p.purpose,
                        "verified_against": list(p.verified_against),
                        "upstream_commits": list(p.upstream_commits),
                        "upstream_blobs": list(p.upstream_blobs),
                        "post_blobs": list(p.post_blobs),
                        "layout": p.layout if p.target == "tensorflow" else None,
                        "shape": p.shape,
                        "fixed_marker": p.fixed_marker,
                        "fixed_evidence": p.fixed_evidence,
                        "check_traces": list(p.check_traces),
                    }
                    for p in patches
                ]
            }
        )
        return
    rows = [("NAME", "TARGET", "VERSIONS", "ORDER", "VERIFIED AGAINST", "PURPOSE")]
    for p in patches:
        verified = _short_verified(p.verified_against)
        target = (
            p.target if p.target != "tensorflow" or p.layout == "tensorflow" else f"{p.target}/{p.layout}"
        )
        rows.append((p.name, target, p.versions_text, str(p.order), verified, p.purpose))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:5])) + "  " + r[5])


def _summary(report: RunReport) -> List[str]:
    lines = []
    for t in report.trees:
        counts = {}
        for p in t.patches:
            counts[p.state] = counts.get(p.state, 0) + 1
        what = ", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing selected"
        changed = f"; {len(t.changed_files)} file(s) changed" if t.changed_files else ""
        if t.recovered:
            lines.append(f"{t.target} {t.path}: {t.recovered}")
        for link in t.links:
            if link["links"]:
                chain = "; ".join(f"{x['link']} -> {x['target']}" for x in link["links"])
                where = "inside the tree" if link["inside"] else "outside the tree"
                lines.append(f"{t.target} {t.path}: {link['path']} is a symlink ({chain}); the file read and "
                             f"patched through it is {link['file']} ({where})")
        kind = ""
        if t.target == "tensorflow":
            kind = f" [{t.layout}{', ' + t.version if t.version else ''}; {t.version_source}" + (
                f"; shape {t.shape}]" if t.shape else "]"
            )
        lines.append(f"{t.target} {t.path}{kind}: {what}{changed}")
    return lines


def _body(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    request = parse_request(args.tf_version) if args.tf_version else None
    manifest = load_manifest(args.manifest)

    if args.list:
        _print_list(_list_patches(manifest, request), args.json)
        return 0
    if args.clone_tf and args.tf_dir is None:
        raise UsageError("--clone-tf needs --tf-dir (where to clone)")
    if args.clone_models and args.models_dir is None:
        raise UsageError("--clone-models needs --models-dir (where to clone)")
    if args.tf_dir is not None and request is None:
        raise UsageError("--tf-dir needs --tf-version (2.x, 2.N or 2.N.M)")
    if request is not None and args.tf_dir is None:
        raise UsageError("--tf-version needs --tf-dir (or --list)")
    if args.tf_dir is None and args.models_dir is None:
        raise UsageError("nothing to do: give --tf-dir and/or --models-dir (or --list)")
    if args.check and args.commit:
        raise UsageError("--check and --commit exclude each other")
    if args.commit and args.allow_dirty:
        raise UsageError("--commit needs the touched files clean; --allow-dirty does not apply to it")

    log = (
        None
        if (args.json or args.quiet)
        else (lambda msg: print(f"{PROG}: {msg}", file=sys.stderr, flush=True))
    )
    if args.clone_tf:
        clone(args.tf_url, args.clone_tf, args.tf_dir, log=log)
    if args.clone_models:
        clone(args.models_url, args.clone_models, args.models_dir, log=log)

    jobs = []
    if args.tf_dir is not None:
        jobs.append(TreeJob("tensorflow", args.tf_dir, request))
    if args.models_dir is not None:
        jobs.append(TreeJob("models", args.models_dir))
    opts = RunOptions(
        check=args.check,
        reverse=args.reverse,
        commit=args.commit,
        allow_dirty=args.allow_dirty,
        log=log,
        follow_symlinks=args.follow_symlinks,
    )
    report = run_jobs(manifest, jobs, opts)
    if args.json:
        emit_json(report.to_json())
    elif not args.quiet:
        for line in _summary(report):
            print(f"{PROG}: {line}", file=sys.stderr)
    if not report.ok:
        err = report.first_error() or "a patch does not apply"
        print(f"{PROG}: error: {err}; nothing was changed", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
