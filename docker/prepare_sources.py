"""The sources stage: the TensorFlow (or LiteRT) tree and the tensorflow/models tree, patched, and described.

    python docker/prepare_sources.py --tf-dir DIR [--tf-local CONTEXT_PATH | --tf-commit SHA --tf-version V]
        [--tf-dir-commit SHA] --models-dir DIR [--models-local CONTEXT_PATH | --models-commit SHA]
        [--models-dir-commit SHA] --out sources.json

Each tree either was copied into DIR from the build context by the Dockerfile (``--tf-local`` /
``--models-local`` name where it came from: the build-args TF_DIR and MODELS_DIR), or is cloned into DIR at
the pinned commit (whatever placeholder the COPY left there is removed first). Then
``tools/apply_patches.py`` patches it in place (the copy inside the build: the user's tree is never written)
and checks the result.

``sources.json`` names each tree for the report: where it came from, its layout, version and commit (from its
``.git`` when the copy has one, else from ``--tf-dir-commit`` / ``--models-dir-commit``, else unknown), the
patches applied (file, shape, strategy), and what the toolchain stage needs to know about the TF tree
(docker/toolchain_plan.py). ``.git`` directories are removed afterwards (the later stages copy the trees).
Exit 0 done, 1 a patch does not apply or a clone failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from toolchain_plan import describe  # noqa: E402  (docker/toolchain_plan.py, beside this file)

APPLY = [sys.executable, str(REPO / "tools" / "apply_patches.py")]
COMMIT = re.compile(r"^[0-9a-f]{40}$")
TF_URL = "https://github.com/tensorflow/tensorflow.git"
MODELS_URL = "https://github.com/tensorflow/models.git"


class Failed(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _git_head(tree: Path) -> Tuple[Optional[str], bool]:
    """HEAD of a tree copied with its ``.git`` (and whether it has uncommitted changes); then the ``.git`` is
    removed: the copy is patched as a plain directory (a vendor's working copy may be dirty; that is what
    gets built)."""
    if not (tree / ".git").exists():
        return None, False
    git = ["git", "-c", f"safe.directory={tree}", "-C", str(tree)]
    proc = subprocess.run(git + ["rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True)
    head = proc.stdout.strip()
    status = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                            text=True)
    shutil.rmtree(tree / ".git", ignore_errors=True)
    ok = proc.returncode == 0 and COMMIT.match(head)
    return (head if ok else None), bool(status.stdout.strip())


def _apply(args: List[str], what: str) -> dict:
    """Run apply_patches with --json; its report, or Failed with its last error line."""
    proc = subprocess.run(APPLY + args + ["--json"], capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except ValueError:
        report = {}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise Failed(f"{what}: {last}", 1 if proc.returncode == 1 else 2)
    return report


def _empty(tree: Path) -> None:
    """Remove what a placeholder COPY put into ``tree`` (the directory stays, empty)."""
    tree.mkdir(parents=True, exist_ok=True)
    for child in tree.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def _tree_report(report: dict, target: str) -> dict:
    trees = [t for t in report.get("trees", []) if t.get("target") == target]
    return trees[0] if trees else {}


def _patches(tree: dict) -> List[dict]:
    return [{"name": p.get("name"), "file": p.get("file"), "shape": p.get("shape"),
             "strategy": p.get("strategy"), "state": p.get("state")} for p in tree.get("patches", [])]


def _local_tree(dest: Path, local: str, dir_commit: str, arg: str) -> dict:
    """Where a tree from the build context (build-arg ``arg``) came from, and its commit if known."""
    if not dest.is_dir() or not any(dest.iterdir()):
        raise Failed(f"--build-arg {arg}={local}: empty or not in the build context", 2)
    head, dirty = _git_head(dest)
    info = {"origin": "build context", "from": local, "name": f"{arg}={local}"}
    if head:
        info.update(commit=head,
                    commit_source=".git of the tree" + (", with uncommitted changes" if dirty else ""))
    elif dir_commit:
        info.update(commit=dir_commit, commit_source=f"--build-arg {arg}_COMMIT (stated, not checked)")
    else:
        info.update(commit=None, commit_source=f"unknown: no .git in the build context and no {arg}_COMMIT")
    return info


def prepare_tf(dest: Path, local: str, commit: str, version: str, dir_commit: str) -> dict:
    if local:
        info = _local_tree(dest, local, dir_commit, "TF_DIR")
        report = _apply(["--tf-version", "2.x", "--tf-dir", str(dest)], f"patching TF_DIR={local}")
    else:
        _empty(dest)
        report = _apply(["--tf-version", version, "--clone-tf", commit, "--tf-dir", str(dest)],
                        f"cloning and patching TensorFlow at {commit}")
        head = _git_head(dest)[0] or commit
        info = {"origin": "clone", "from": f"{TF_URL}@{head}", "name": f"tensorflow/tensorflow@{head[:8]}",
                "commit": head, "commit_source": "TF_COMMIT (cloned)"}
    tree = _tree_report(report, "tensorflow")
    info.update(layout=tree.get("layout"), version=tree.get("version"),
                version_source=tree.get("version_source"), shape=tree.get("shape"), patches=_patches(tree))
    check = ["--check", "--tf-version", version if not local else "2.x", "--tf-dir", str(dest)]
    _apply(check, "checking the patched TensorFlow tree")
    info["toolchain"] = describe(dest, info["layout"] or "unknown")
    return info


def prepare_models(dest: Path, local: str, commit: str, dir_commit: str) -> dict:
    if local:
        info = _local_tree(dest, local, dir_commit, "MODELS_DIR")
        report = _apply(["--models-dir", str(dest)], f"patching MODELS_DIR={local}")
    else:
        _empty(dest)
        report = _apply(["--clone-models", commit, "--models-dir", str(dest)],
                        f"cloning and patching tensorflow/models at {commit}")
        head = _git_head(dest)[0] or commit
        info = {"origin": "clone", "from": f"{MODELS_URL}@{head}", "name": f"tensorflow/models@{head[:8]}",
                "commit": head, "commit_source": "MODELS_COMMIT (cloned)"}
    tree = _tree_report(report, "models")
    info["patches"] = _patches(tree)
    _apply(["--check", "--models-dir", str(dest)], "checking the patched tensorflow/models tree")
    return info


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tf-dir", type=Path, required=True)
    ap.add_argument("--tf-local", default="", help="build-arg TF_DIR (empty: clone --tf-commit)")
    ap.add_argument("--tf-commit", default="")
    ap.add_argument("--tf-version", default="2.x")
    ap.add_argument("--tf-dir-commit", default="")
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--models-local", default="", help="build-arg MODELS_DIR (empty: clone --models-commit)")
    ap.add_argument("--models-commit", default="")
    ap.add_argument("--models-dir-commit", default="")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        tf = prepare_tf(args.tf_dir, args.tf_local, args.tf_commit, args.tf_version, args.tf_dir_commit)
        models = prepare_models(args.models_dir, args.models_local, args.models_commit,
                                args.models_dir_commit)
    except Failed as exc:
        print(f"prepare_sources: error: {exc}", file=sys.stderr)
        return exc.code
    for tree in (args.tf_dir, args.models_dir):
        shutil.rmtree(tree / ".git", ignore_errors=True)
    sources = {"schema": 1, "tensorflow": tf, "models": models}
    args.out.write_text(json.dumps(sources, indent=2) + "\n", encoding="utf-8")
    variant = ", ".join(f"{p['file']} ({p['strategy']})" for p in tf["patches"]) or "none"
    print(f"prepare_sources: TensorFlow tree {tf['name']}: {tf['layout']}, version "
          f"{tf['version'] or 'unknown'}, commit {tf['commit'] or 'unknown'}; patch {variant}",
          file=sys.stderr)
    print(f"prepare_sources: tensorflow/models tree {models['name']}: commit "
          f"{models['commit'] or 'unknown'}; {len(models['patches'])} patches", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
