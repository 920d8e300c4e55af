"""Generate the tensorflow/models patches from the rule, one per distinct upstream text of each file, and
verify them over the upstream history.

For every commit reachable from ``ref`` that changed one of the rule's files, the text (git blob) of each
file is read. Every distinct blob the rule changes gets one ``git format-patch`` file
(``patches/models/<slug>/<blob12>.patch``, with the full pre-image blob id in its ``index`` line, so
``git am -3`` works on a drifted fork). Then every commit is verified: its files are put in a scratch
repository, the set of patches for its blobs is applied with ``git am``, every rule site must be done
afterwards, a second ``git apply --check`` must fail while ``git apply -R --check`` passes (the tree reads
as patched), and reversing the set must give back the commit's exact tree.

The output is deterministic (fixed identities and dates, ``--zero-commit``, no signature): generating
twice from the same history gives byte-identical files, which is how ``--check`` proves the committed
patches are what the rule makes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import git

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.patching.gitops import execute
from deeplab_nnapi.patching.pyrule import DONE, RuleError
from deeplab_nnapi.patching.rulefile import FileRule, Rule

#: The last upstream tensorflow/models commit that changed DeepLab's export path (2020-01-03,
#: "Fix multi scale prediction bug (#8000)"): what every clone of tensorflow/models has today.
FINAL_UPSTREAM = "6fb5646f18d7173dd08a576a819a8dc9b36a6d8b"
UPSTREAM_NAME = "tensorflow/models"

_FIXED_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_COMMITTER_NAME": "deeplab-nnapi",
    "GIT_COMMITTER_EMAIL": "deeplab-nnapi@users.noreply.github.com",
    "GIT_COMMITTER_DATE": "Mon, 30 Nov 2026 12:00:00 +0000",
    "LC_ALL": "C",
    "TZ": "UTC",
}


@dataclass
class State:
    """One upstream commit: the blob of each rule file (None = the file does not exist there)."""

    commit: str
    date: str
    subject: str
    blobs: Dict[str, Optional[str]]


@dataclass
class Variant:
    """One generated patch: a rule file's pre-image blob and the patch that changes it."""

    file: FileRule
    pre_blob: str
    post_blob: str
    patch: bytes
    sites: List[str]  # the changed call sites, described
    commits: List[State] = field(default_factory=list)  # upstream commits whose file is this blob

    @property
    def name(self) -> str:
        return f"models-{self.file.slug}-{self.pre_blob[:12]}"

    @property
    def relpath(self) -> str:
        return f"models/{self.file.slug}/{self.pre_blob[:12]}.patch"


@dataclass
class Verification:
    state: State
    patches: List[str]  # variant names applied
    unchanged: List[str]  # rule files with nothing to change
    ok: bool
    detail: str


@dataclass
class Generated:
    rule: Rule
    ref: str
    states: List[State]
    variants: List[Variant]
    verifications: List[Verification]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verifications)


class Source:
    """A repository read by its git directory (a clone, a bare clone, or a bare directory without a
    config file): every command runs as ``git --git-dir=DIR ...``."""

    def __init__(self, path: Path):
        path = Path(path).expanduser()
        gd = path / ".git" if (path / ".git").exists() else path
        if not (gd / "objects").is_dir() or not (gd / "HEAD").exists():
            raise UsageError(f"--git-dir {path}: not a git repository")
        self.git_dir = gd.resolve()
        self.git = git.Git()

    def close(self) -> None:
        pass


def _git(repo, *args: str, stdin: Optional[bytes] = None, binary: bool = False, env=None):
    """(rc, stdout, stderr) of ``git ARGS`` with a fixed identity, date and no user config."""
    if isinstance(repo, Source):
        repo, args = repo.git, (f"--git-dir={repo.git_dir}", *args)
    res = execute(repo, args, env={**_FIXED_ENV, **(env or {})}, stdin=stdin, binary=binary)
    return res.rc, res.out, res.err


def _must(repo: git.Repo, *args: str, **kw):
    rc, out, err = _git(repo, *args, **kw)
    if rc != 0:
        raise CheckFailed(f"git {args[0]} failed: {(err.strip().splitlines() or ['?'])[-1]}")
    return out


def read_history(source: Source, ref: str, rule: Rule) -> List[State]:
    """Every commit reachable from ``ref`` that changed a rule file, newest first."""
    paths = [f.path for f in rule.files]
    rc, out, err = _git(source, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    if rc != 0:
        raise UsageError(f"--ref {ref}: no such commit in the repository")
    log = _must(source, "log", "--format=%H%x09%ad%x09%s", "--date=short", ref.strip(), "--", *paths)
    states = []
    for line in log.splitlines():
        sha, date, subject = (line.split("\t", 2) + ["", ""])[:3]
        listing = _must(source, "ls-tree", sha, "--", *paths)
        blobs: Dict[str, Optional[str]] = dict.fromkeys(paths)
        for rec in listing.splitlines():
            meta, _, name = rec.partition("\t")
            blobs[name] = meta.split()[2]
        states.append(State(sha, date, subject, blobs))
    if not states:
        raise UsageError(f"no commit reachable from {ref} touches {', '.join(paths)}")
    return states


def _message(rule: Rule, fr: FileRule, pre_blob: str, sites: List[str], first: State) -> str:
    lines = [fr.subject, "", rule.body.strip(), "", f"Changed in {fr.path}:"]
    lines += [f"- {s}" for s in sites]
    whys = [e.why for e in fr.edits if e.why]
    if whys:
        lines += ["", "Why each kind of call changes:"] + [f"- {w}" for w in whys]
    lines += [
        "",
        f"Pre-image: {fr.path} blob {pre_blob}, as in {UPSTREAM_NAME}@{first.commit}",
        f"({first.date}, {first.subject}). Generated from patches/models/rule.toml",
        f"(sha256 {rule.sha256[:16]}) by tools/generate_model_patches.py.",
    ]
    return "\n".join(lines) + "\n"


def make_patch(
    rule: Rule, fr: FileRule, pre: bytes, pre_blob: str, first: State, workdir: Path
) -> Tuple[bytes, str, List[str]]:
    """(format-patch bytes, post-image blob, changed sites) for one pre-image text."""
    try:
        result = fr.apply(pre)
    except RuleError as exc:
        raise CheckFailed(f"{fr.path} blob {pre_blob[:12]}: {exc}") from None
    sites = [s.describe() + f" -> {s.edit.keyword}={s.edit.to.replace('{tf}', 'tf')}" for s in result.changed]
    d = Path(tempfile.mkdtemp(prefix="gen-", dir=workdir))
    repo = git.Repo.init(d)
    try:
        target = d / fr.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pre)
        _must(repo, "add", "--", fr.path)
        author = {
            "GIT_AUTHOR_NAME": _FIXED_ENV["GIT_COMMITTER_NAME"],
            "GIT_AUTHOR_EMAIL": _FIXED_ENV["GIT_COMMITTER_EMAIL"],
            "GIT_AUTHOR_DATE": _FIXED_ENV["GIT_COMMITTER_DATE"],
        }
        _must(repo, "commit", "-q", "--no-verify", "-m", "upstream", env=author)
        target.write_bytes(result.text)
        _must(repo, "add", "--", fr.path)
        name, _, email = rule.author.partition(" <")
        _must(
            repo,
            "commit",
            "-q",
            "--no-verify",
            "-F",
            "-",
            stdin=_message(rule, fr, pre_blob, sites, first).encode(),
            env={
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email.rstrip(">"),
                "GIT_AUTHOR_DATE": rule.date,
            },
        )
        patch = _must(
            repo,
            "format-patch",
            "-1",
            "--stdout",
            "--full-index",
            "--zero-commit",
            "--no-signature",
            "--diff-algorithm=myers",
            "--stat=80",
            "HEAD",
            binary=True,
        )
        post_blob = _must(repo, "rev-parse", f"HEAD:{fr.path}").strip()
    finally:
        repo.close()
        shutil.rmtree(d, ignore_errors=True)
    return patch, post_blob, sites


def _verify_state(
    source: Source, rule: Rule, state: State, by_blob: Dict[Tuple[str, str], Variant], workdir: Path
) -> Verification:
    d = Path(tempfile.mkdtemp(prefix="verify-", dir=workdir))
    repo = git.Repo.init(d)
    applied, unchanged = [], []
    try:
        present = []
        for fr in rule.files:
            blob = state.blobs.get(fr.path)
            if blob is None:
                continue
            p = d / fr.path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_must(source, "cat-file", "blob", blob, binary=True))
            present.append(fr)
        _must(repo, "add", "-A")
        _must(
            repo,
            "commit",
            "-q",
            "--no-verify",
            "-m",
            state.commit,
            env={
                "GIT_AUTHOR_NAME": "u",
                "GIT_AUTHOR_EMAIL": "u@u",
                "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
            },
        )
        base_tree = _must(repo, "rev-parse", "HEAD^{tree}").strip()
        files = []
        for fr in present:
            v = by_blob.get((fr.path, state.blobs[fr.path]))
            if v is None:
                unchanged.append(fr.path)
                continue
            f = d.parent / f"{d.name}-{v.pre_blob[:12]}.patch"
            f.write_bytes(v.patch)
            files.append(f)
            applied.append(v.name)
        if files:
            rc, _, err = _git(repo, "am", "-q", *map(str, files))
            if rc != 0:
                return Verification(state, applied, unchanged, False, f"git am failed: {err.strip()[:200]}")
        for fr in present:
            sites = fr.scan((d / fr.path).read_bytes())
            left = [s.describe() for s in sites if s.state != DONE]
            if left:
                return Verification(state, applied, unchanged, False, f"{fr.path}: not done: {left[0]}")
        for f in files:
            if _git(repo, "apply", "--check", str(f))[0] == 0:
                return Verification(state, applied, unchanged, False, f"{f.name} applies a second time")
            if _git(repo, "apply", "-R", "--check", str(f))[0] != 0:
                return Verification(state, applied, unchanged, False, f"{f.name} does not read as applied")
        for f in reversed(files):
            _must(repo, "apply", "-R", "--index", str(f))
        after = _must(repo, "write-tree").strip()
        if after != base_tree:
            return Verification(state, applied, unchanged, False, "reversing did not restore the tree")
        return Verification(state, applied, unchanged, True, "git am, second run, reverse: ok")
    finally:
        repo.close()
        shutil.rmtree(d, ignore_errors=True)
        for f in d.parent.glob(f"{d.name}-*.patch"):
            f.unlink()


def generate(
    source_dir: Path, rule: Rule, ref: str = FINAL_UPSTREAM, log: Optional[Callable[[str], None]] = None
) -> Generated:
    say = log or (lambda m: None)
    source = Source(source_dir)
    workdir = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-generate-"))
    try:
        states = read_history(source, ref, rule)
        say(
            f"{len(states)} commits from {states[-1].date} to {states[0].date} change "
            f"{', '.join(f.path for f in rule.files)}"
        )
        variants: List[Variant] = []
        by_blob: Dict[Tuple[str, str], Variant] = {}
        for fr in rule.files:
            seen: Dict[str, List[State]] = {}
            for st in states:
                blob = st.blobs.get(fr.path)
                if blob is not None:
                    seen.setdefault(blob, []).append(st)
            for blob, its in seen.items():  # newest first
                pre = _must(source, "cat-file", "blob", blob, binary=True)
                if all(s.state == DONE for s in fr.scan(pre)):
                    continue  # nothing to change in this text
                patch, post, sites = make_patch(rule, fr, pre, blob, its[-1], workdir)
                v = Variant(fr, blob, post, patch, sites, its)
                variants.append(v)
                by_blob[(fr.path, blob)] = v
            say(
                f"{fr.path}: {len(seen)} distinct texts, "
                f"{sum(1 for v in variants if v.file is fr)} need a patch"
            )
        checks = []
        for st in states:
            res = _verify_state(source, rule, st, by_blob, workdir)
            checks.append(res)
            say(f"  {st.commit[:12]} {st.date}: {'ok' if res.ok else 'FAILED'} ({res.detail})")
        return Generated(rule, ref, states, variants, checks)
    finally:
        source.close()
        shutil.rmtree(workdir, ignore_errors=True)
