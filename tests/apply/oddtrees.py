"""Odd trees: a generator of mutated TensorFlow and tensorflow/models trees, and the oracle that judges
what apply_patches did with each.

The trees start from the ones the suite already builds: a TensorFlow 2.8 tree (shape c) whose delegate is
a complete text around the real shape-c patch's own hunk (``apply_helpers.delegate_file``, the real
manifest), and the synthetic DeepLab tree of ``ModelsWorld`` (final state, its generated patches and the
real rule). Each is a git repository or a plain directory. One mutation is made to the file the patches
touch (the delegate; for models one of the three files):

* symbolic links: inside the tree (to a file, a linked folder, a chain, an absolute link), outside it
  (with and without ``--follow-symlinks``), dangling, a loop, to a directory; hard links inside and
  outside the tree;
* permissions (run as an unprivileged user): the file or its folder unreadable, unwritable;
* text: CRLF, mixed line ends, a BOM, binary garbage inserted, the file cut short at a random point;
  the check moved, duplicated, commented out, removed, given another limit (models: the call sites
  moved, duplicated, commented out);
* the file replaced, or replaced by a link, between the plan and the write.

The property (:func:`judge`): the tool applies exactly the intended change (the patch's change to the text
it should read, through the links the policy allows; models: the rule's change to each file), or refuses
with one line and changes nothing. Never a traceback, a status the text does not back (``fixed-upstream``
without the check gone, ``not-needed`` where the rule finds a call), or a half-patched tree. A run that
applied is run again (nothing changes) and reversed (the mutated tree comes back byte for byte).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import random
import re
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from apply_helpers import GIT_ENV, REAL_MANIFEST, ModelsWorld, delegate_file, git, parse_hunks, version_h

TOOLS = Path(__file__).resolve().parents[2] / "tools"
NNAPI = "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"
SHAPE_C = "tf-nnapi-avgpool-area-shape-c"

TF_KINDS = (
    "plain", "prepatched",
    "link-inside", "link-inside-dir", "link-chain", "link-absolute-inside", "link-outside",
    "link-outside-follow", "link-dangling", "link-loop", "link-to-dir",
    "hardlink-inside", "hardlink-outside",
    "unreadable-file", "unreadable-dir", "unwritable-file", "unwritable-dir",
    "crlf", "mixed-eol", "bom", "garbage", "truncated",
    "check-moved", "check-duplicated", "check-commented", "check-removed", "check-other-limit",
    "replaced-mid-run", "relinked-mid-run",
)
MODELS_KINDS = (
    "plain", "prepatched",
    "link-inside", "link-inside-dir", "link-chain", "link-absolute-inside", "link-outside",
    "link-outside-follow", "link-dangling", "link-loop", "link-to-dir",
    "hardlink-inside", "hardlink-outside",
    "unreadable-file", "unreadable-dir", "unwritable-file", "unwritable-dir",
    "crlf", "mixed-eol", "bom", "garbage", "truncated",
    "sites-moved", "sites-duplicated", "sites-commented",
    "replaced-mid-run", "relinked-mid-run",
)
PERMISSION_KINDS = ("unreadable-file", "unreadable-dir", "unwritable-file", "unwritable-dir")


# -- the two base trees ---------------------------------------------------------------------------------
@dataclass
class Base:
    target: str  # "tensorflow" | "models"
    manifest: Path
    files: Dict[str, bytes]  # the tree's files (relative path -> bytes)
    touched: Tuple[str, ...]  # the files the patches touch
    args: Tuple[str, ...]  # the CLI arguments naming the tree ({tree} stands for its path)
    old: bytes = b""  # TensorFlow: the patch's old block (context + removed lines, LF) ...
    new: bytes = b""  # ... and its new block
    rule: object = None  # models: the rule


def tf_base() -> Base:
    from deeplab_nnapi.patching.manifest import load_manifest

    patch = load_manifest(REAL_MANIFEST).by_name(SHAPE_C)
    data = patch.path.read_bytes()
    (path, text), = delegate_file(data).items()
    hunks = parse_hunks(data)[path]["hunks"]
    old = "\n".join(ln for h in hunks for ln in h["old"]) + "\n"
    new = "\n".join(ln for h in hunks for ln in h["new"]) + "\n"
    files = {
        "tensorflow/core/public/version.h": version_h(2, 8, 0).encode(),
        NNAPI: text.encode(),
        "tensorflow/lite/BUILD": b"# a synthetic build file\n",
    }
    return Base("tensorflow", REAL_MANIFEST, files, (NNAPI,), ("--tf-version", "2.x", "--tf-dir", "{tree}"),
                old.encode(), new.encode())


def models_base(world: ModelsWorld) -> Base:
    files = {rel: text.encode() for rel, text in world.files("final").items()}
    return Base("models", world.manifest, files, tuple(sorted(files)), ("--models-dir", "{tree}"),
                rule=world.rule)


# -- a case ---------------------------------------------------------------------------------------------
@dataclass
class Case:
    base: Base
    kind: str
    git: bool
    mode: str  # apply | check | commit
    seed: int
    dir: Path = Path()  # the case's own directory: tree/ and outside/
    rel: str = ""  # the touched file the mutation is about
    args: List[str] = field(default_factory=list)  # extra CLI arguments
    unprivileged: bool = False
    hook: Optional[Callable[[], None]] = None  # run between the plan and the write
    hook_state: Dict[str, bytes] = field(default_factory=dict)  # what the hook wrote (abs path -> bytes)
    expect: Tuple[str, ...] = ()  # the outcomes that are right
    names: Tuple[str, ...] = ()  # what a refusal's line must name

    @property
    def tree(self) -> Path:
        return self.dir / "tree"

    @property
    def outside(self) -> Path:
        return self.dir / "outside"

    @property
    def label(self) -> str:
        return f"{self.base.target}/{'git' if self.git else 'plain'}/{self.kind}/{self.mode}/seed={self.seed}"


def make_case(base: Base, kind: str, git_tree: bool, mode: str, seed: int, where: Path) -> Case:
    """Build the tree of a case in ``where`` (a fresh directory) and say what is right for it."""
    c = Case(base, kind, git_tree, mode, seed, dir=where)
    rng = random.Random(seed)
    c.tree.mkdir(parents=True)
    c.outside.mkdir()
    files = dict(base.files)
    if kind == "prepatched":
        files = _patched_files(base, files)
    for rel, data in files.items():
        p = c.tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    c.rel = NNAPI if base.target == "tensorflow" else rng.choice(base.touched)
    _mutate(c, rng)
    if git_tree:
        git(c.tree, "init", "-q", "-b", "main")
        git(c.tree, "add", "-A")
        git(c.tree, "commit", "-q", "-m", "base")
    return c


def _patched_files(base: Base, files: Dict[str, bytes]) -> Dict[str, bytes]:
    out = dict(files)
    if base.target == "tensorflow":
        out[NNAPI] = files[NNAPI].replace(base.old, base.new)
    else:
        for rel in base.touched:
            out[rel] = base.rule.file(rel).apply(files[rel]).text
    return out


def _lines(data: bytes) -> List[bytes]:
    return data.splitlines(keepends=True)


def _rewrite(p: Path, fn: Callable[[bytes], bytes]) -> None:
    p.write_bytes(fn(p.read_bytes()))


def _mutate(c: Case, rng: random.Random) -> None:  # noqa: C901 - one branch per kind, on purpose
    kind, tree, rel = c.kind, c.tree, c.rel
    target = tree / rel
    tf = c.base.target == "tensorflow"
    c.expect = ("applied",) if kind not in ("prepatched",) else ("already-applied",)
    if kind == "link-inside":
        real = tree / "vendor" / "real" / Path(rel).name
        real.parent.mkdir(parents=True)
        target.rename(real)
        target.symlink_to(os.path.relpath(real, target.parent))
    elif kind == "link-inside-dir":
        folder = target.parent
        moved = tree / "third_party" / "moved" / folder.name
        moved.parent.mkdir(parents=True)
        folder.rename(moved)
        folder.symlink_to(os.path.relpath(moved, folder.parent), target_is_directory=True)
    elif kind == "link-chain":
        real = tree / "vendor" / "b" / Path(rel).name
        hop = tree / "vendor" / "a.link"
        real.parent.mkdir(parents=True)
        target.rename(real)
        hop.symlink_to(os.path.relpath(real, hop.parent))
        target.symlink_to(os.path.relpath(hop, target.parent))
    elif kind == "link-absolute-inside":
        real = tree / "vendor" / Path(rel).name
        real.parent.mkdir(parents=True)
        target.rename(real)
        target.symlink_to(real)
    elif kind in ("link-outside", "link-outside-follow"):
        real = c.outside / Path(rel).name
        target.rename(real)
        target.symlink_to(real if rng.random() < 0.5 else os.path.relpath(real, target.parent))
        if kind == "link-outside":
            c.expect, c.names = ("refused-link",), (rel, "outside")
        else:
            c.args.append("--follow-symlinks")
    elif kind == "link-dangling":
        target.unlink()
        target.symlink_to("vendor-missing/" + Path(rel).name)
        c.expect, c.names = ("refused-link",), (rel, "dangling")
    elif kind == "link-loop":
        other = target.parent / "loop.link"
        target.unlink()
        other.symlink_to(Path(rel).name)
        target.symlink_to("loop.link")
        c.expect, c.names = ("refused-link",), (rel, "loops")
    elif kind == "link-to-dir":
        target.unlink()
        (tree / "vendor" / "somedir").mkdir(parents=True)
        target.symlink_to(os.path.relpath(tree / "vendor" / "somedir", target.parent))
        c.expect, c.names = ("refused-link",), (rel, "directory")
    elif kind == "hardlink-inside":
        other = tree / "vendor" / ("copy-" + Path(rel).name)
        other.parent.mkdir(parents=True)
        os.link(target, other)
    elif kind == "hardlink-outside":
        os.link(target, c.outside / Path(rel).name)
    elif kind in PERMISSION_KINDS:
        c.unprivileged = True
        c.expect, c.names = ("refused-permission",), (rel.rsplit("/", 1)[0],)
    elif kind == "crlf":
        _rewrite(target, lambda b: b.replace(b"\n", b"\r\n"))
    elif kind == "mixed-eol":
        _rewrite(target, lambda b: b"".join(
            ln[:-1] + b"\r\n" if ln.endswith(b"\n") and rng.random() < 0.5 else ln for ln in _lines(b)))
        c.expect = ("applied", "refused-conflict")
    elif kind == "bom":
        _rewrite(target, lambda b: b"\xef\xbb\xbf" + b)
    elif kind == "garbage":
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        _rewrite(target, lambda b: (lambda k: b[:k] + junk + b[k:])(rng.randint(0, len(b))))
        c.expect = ("applied", "refused-conflict", "not-needed")
    elif kind == "truncated":
        _rewrite(target, lambda b: b[: rng.randint(0, len(b) - 1)])
        c.expect = ("applied", "refused-conflict", "not-needed")
    elif tf and kind.startswith("check-"):
        _mutate_check(c, rng, target)
    elif not tf and kind.startswith("sites-"):
        _mutate_sites(c, rng, target)
        c.expect = ("applied", "refused-conflict", "not-needed")
    elif kind == "replaced-mid-run":
        c.hook = lambda: _replace(c, target)
        c.expect, c.names = ("refused-changed",), (Path(rel).name,)
    elif kind == "relinked-mid-run":
        c.hook = lambda: _relink(c, target)
        c.expect, c.names = ("refused-changed",), (Path(rel).name,)


def _mutate_check(c: Case, rng: random.Random, target: Path) -> None:
    old = c.base.old
    text = target.read_bytes()
    if c.kind == "check-moved":  # the whole block (with its context) to another place in the file
        text = text.replace(old, b"", 1)
        lines = _lines(text)
        k = rng.randint(0, len(lines))
        text = b"".join(lines[:k]) + old + b"".join(lines[k:])
        c.expect = ("applied", "refused-conflict")
    elif c.kind == "check-duplicated":
        lines = _lines(text)
        k = rng.randint(0, len(lines))
        text = b"".join(lines[:k]) + old + b"".join(lines[k:])
        c.expect = ("refused-conflict",)
    elif c.kind == "check-commented":
        text = text.replace(old, b"".join(b"// " + ln for ln in _lines(old)))
        c.expect = ("refused-conflict",)
    elif c.kind == "check-removed":  # TF 1.13/1.14, or a fork that dropped it
        (_, text_s), = delegate_file(_patch_bytes(), drop_check=True).items()
        text = text_s.encode()
        c.expect = ("fixed-upstream",)
    elif c.kind == "check-other-limit":
        text = text.replace(b"<= 256", b"<= 1024")
        c.expect = ("refused-conflict",)
    target.write_bytes(text)


def _patch_bytes() -> bytes:
    from deeplab_nnapi.patching.manifest import load_manifest

    return load_manifest(REAL_MANIFEST).by_name(SHAPE_C).path.read_bytes()


def _mutate_sites(c: Case, rng: random.Random, target: Path) -> None:
    text = target.read_bytes()
    parts = re.split(rb"(?m)^(?=def )", text)
    head, funcs = parts[0], parts[1:]
    if not funcs:
        return
    if c.kind == "sites-moved":
        rng.shuffle(funcs)
        funcs = [f if f.endswith(b"\n\n\n") else f.rstrip(b"\n") + b"\n\n\n" for f in funcs]
    elif c.kind == "sites-duplicated":
        k = rng.randrange(len(funcs))
        funcs.insert(k, funcs[k].rstrip(b"\n") + b"\n\n\n")
    elif c.kind == "sites-commented":
        k = rng.randrange(len(funcs))
        funcs[k] = b"".join(b"# " + ln if ln.strip() else ln for ln in _lines(funcs[k]))
    target.write_bytes(head + b"".join(funcs))


def _replace(c: Case, target: Path) -> None:
    real = Path(os.path.realpath(target))
    data = real.read_bytes() + b"\n# an edit made while apply_patches was running\n"
    real.write_bytes(data)
    c.hook_state[str(real)] = data


def _relink(c: Case, target: Path) -> None:
    copy = c.tree / "elsewhere" / target.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy2(os.path.realpath(target), copy)
    os.unlink(target)
    target.symlink_to(os.path.relpath(copy, target.parent))
    c.hook_state[str(copy)] = copy.read_bytes()


# -- running the tool -----------------------------------------------------------------------------------
@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def report(self) -> Optional[dict]:
        try:
            return json.loads(self.out) if self.out.strip() else None
        except ValueError:
            return None


def cli_args(c: Case, *extra: str) -> List[str]:
    args = [a.replace("{tree}", str(c.tree)) for a in c.base.args]
    mode = {"apply": [], "check": ["--check"], "commit": ["--commit"]}[c.mode]
    return ["--manifest", str(c.base.manifest), *args, *mode, *c.args, *extra, "--json"]


def run_in_process(args: List[str], hook: Optional[Callable[[], None]] = None) -> Run:
    """The CLI in this process (stdout/stderr captured); an exception that escapes it is a traceback."""
    import traceback

    from deeplab_nnapi.cli.apply_patches import main
    from deeplab_nnapi.patching import engine

    out, err = io.StringIO(), io.StringIO()
    saved = engine._between_plan_and_write
    if hook is not None:
        engine._between_plan_and_write = lambda planners: hook()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    except BaseException:  # noqa: BLE001 - exactly what the property forbids
        return Run(99, out.getvalue(), err.getvalue() + "Traceback (escaped main)\n" + traceback.format_exc())
    finally:
        engine._between_plan_and_write = saved
    return Run(rc, out.getvalue(), err.getvalue())


# -- dropping privileges --------------------------------------------------------------------------------
@dataclass
class Unprivileged:
    """How to run the tool as a user without root's powers: ``uid``/``gid`` None = we are such a user."""

    uid: Optional[int]
    gid: Optional[int]
    python: str
    pythonpath: str

    def run(self, args: List[str], cwd: Path) -> Run:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        env.update(GIT_ENV)
        env.update({"PYTHONPATH": self.pythonpath, "HOME": str(cwd), "TMPDIR": str(cwd),
                    "PYTHONDONTWRITEBYTECODE": "1"})
        code = "import sys; from deeplab_nnapi.cli.apply_patches import main; sys.exit(main(sys.argv[1:]))"
        res = subprocess.run([self.python, "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=300, preexec_fn=self._drop if self.uid is not None else None)
        return Run(res.returncode, res.stdout, res.stderr)

    def _drop(self) -> None:  # pragma: no cover - runs in the child
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)

    def own(self, path: Path) -> None:
        """Give ``path`` (recursively, links themselves) to the user, so it may write what it should."""
        if self.uid is None:
            return
        for dirpath, dirnames, filenames in os.walk(path):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, self.uid, self.gid)


def find_unprivileged() -> Tuple[Optional[Unprivileged], str]:
    """A way to run the tool without root's powers, or (None, why not). Not root: ourselves."""
    user_site = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    paths = [str(TOOLS), *site.getsitepackages(), *user_site]
    pythonpath = os.pathsep.join(p for p in paths if os.path.isdir(p))
    if os.geteuid() != 0:
        return Unprivileged(None, None, sys.executable, pythonpath), ""
    user = None
    for name in ("nobody", "nfsnobody", "daemon"):
        try:
            user = pwd.getpwnam(name)
            break
        except KeyError:
            continue
    if user is None or user.pw_uid == 0:
        return None, "running as root and no unprivileged user (nobody) exists to drop to"
    probe_dir = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-unpriv-"))
    os.chmod(probe_dir, 0o777)
    try:
        for python in dict.fromkeys([sys.executable, os.path.realpath(sys.executable),
                                     getattr(sys, "_base_executable", sys.executable), "/usr/bin/python3",
                                     shutil.which("python3") or ""]):
            if not python:
                continue
            u = Unprivileged(user.pw_uid, user.pw_gid, python, pythonpath)
            try:
                res = u.run(["--help"], probe_dir)
            except OSError:
                continue
            if res.rc == 0 and "apply_patches" in res.out:
                return u, ""
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    return None, (f"running as root; the unprivileged user {user.pw_name!r} cannot run a Python that imports "
                  "this package (is the checkout or the virtualenv readable to other users?)")


# -- snapshots ------------------------------------------------------------------------------------------
def snap(root: Path) -> Dict[str, tuple]:
    """Every entry under ``root``: files (bytes, mode), links (target), folders (mode); not .git (objects
    may be added; --commit's own result is checked with git status)."""
    out: Dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if ".git" in dirnames:
            dirnames.remove(".git")
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.normpath(os.path.join(rel_dir, n))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                try:
                    data = Path(p).read_bytes()
                except PermissionError:
                    data = None
                out[rel] = ("file", data, stat.S_IMODE(st.st_mode))
    return out


# -- the oracle -----------------------------------------------------------------------------------------
@dataclass
class Verdict:
    case: str
    outcome: str  # applied | already-applied | fixed-upstream | not-needed | would-apply | refused-...
    wrong: List[str]

    @property
    def ok(self) -> bool:
        return not self.wrong


def _classify(run: Run) -> str:
    if run.rc == 0:
        rep = run.report
        if rep is None:
            return "no-report"
        states = [p["state"] for t in rep["trees"] for p in t["patches"]]
        for s in ("applied", "reversed", "would-apply", "would-reverse", "fixed-upstream", "already-applied",
                  "not-applied", "not-needed", "not-present"):
            if s in states:
                return s
        return "nothing"
    if run.rc == 1:
        return "refused-conflict"
    if run.rc == 2:
        msg = run.err.lower()
        if "changed during the run" in msg:
            return "refused-changed"
        if "symlink" in msg:
            return "refused-link"
        if any(w in msg for w in ("permission denied", "not writable", "cannot read")):
            return "refused-permission"
        return "refused-input"
    return f"exit-{run.rc}"


def _real_of(c: Case, rel: str) -> Path:
    return Path(os.path.realpath(c.tree / rel))


def _tf_result_ok(before: bytes, after: bytes, old: bytes, new: bytes) -> Optional[str]:
    """None when ``after`` is ``before`` with exactly the patch's block changed: the old block (in any line
    ends) replaced by the new one, every other byte the same."""
    pattern = b"".join(re.escape(ln.rstrip(b"\n")) + b"\r?\n" for ln in _lines(old))
    found = list(re.finditer(pattern, before))
    if len(found) != 1:
        return f"the old block occurs {len(found)} times in the text the tool read"
    i, j = found[0].span()
    tail = len(before) - j
    if not after.startswith(before[:i]) or not after.endswith(before[j:]) or len(after) < i + tail:
        return "bytes outside the patched block changed"
    middle = after[i : len(after) - tail]
    if middle.replace(b"\r\n", b"\n") != new:
        return "the patched block is not the patch's new text"
    ends = {b"\r\n" if ln.endswith(b"\r\n") else b"\n" for ln in _lines(before[i:j])}
    if ends == {b"\r\n"} and any(not ln.endswith(b"\r\n") for ln in _lines(middle)):
        return "added lines do not have the file's CRLF line ends"
    return None


#: models kinds whose text the tool may rightly refuse (it is damaged, or not what the rule knows)
_MODELS_DAMAGED = ("mixed-eol", "garbage", "truncated", "sites-moved", "sites-duplicated", "sites-commented")


def _models_expectation(c: Case, texts: Dict[str, Optional[bytes]]) -> Tuple[set, Dict[str, bytes]]:
    """What is right for a models tree, from the rule's view of each file: the right outcomes and, for an
    apply, each changed file's bytes after."""
    from deeplab_nnapi.patching.pyrule import DONE, TODO, RuleError

    rule = c.base.rule
    after: Dict[str, bytes] = {}
    refuse = changes = done = False
    for rel, data in texts.items():
        fr = rule.file(rel)
        if data is None:
            refuse = refuse or not fr.optional
            continue
        try:
            sites = fr.scan(data)
            if any(s.state not in (TODO, DONE) for s in sites):
                raise RuleError("a call the rule cannot decide")
            if any(s.state == TODO for s in sites):
                after[rel] = fr.apply(data).text
                changes = True
            elif sites:
                done = True
        except (RuleError, ValueError, UnicodeDecodeError):
            refuse = True
    if refuse:
        return {"refused-conflict"}, {}
    ok = {"applied"} if changes else ({"already-applied"} if done else {"not-needed"})
    if c.kind in _MODELS_DAMAGED:
        ok |= {"refused-conflict", "not-needed", "already-applied"} if not changes else {"refused-conflict"}
    return ok, after


def expected_outcomes(c: Case, read: Dict[str, Optional[bytes]]) -> Tuple[set, Dict[str, bytes]]:
    expected, want = set(c.expect), {}
    if c.base.target == "models" and not (set(c.expect) & {"refused-link", "refused-permission",
                                                            "refused-changed"}):
        expected, want = _models_expectation(c, read)
    if c.mode == "commit" and "--follow-symlinks" in c.args:
        expected = {"refused-link"}  # --commit never records a file outside the repository
    if c.mode == "check":
        expected = {{"applied": "would-apply"}.get(e, e) for e in expected}
    return expected, want


def judge(c: Case, run: Run, before: Dict[str, tuple], after: Dict[str, tuple],
          read: Dict[str, Optional[bytes]]) -> Verdict:
    """The property for one run. ``before``/``after``: snapshots of the case directory (the tree and what
    is outside it); ``read``: the touched files as the tool should read them (through allowed links)."""
    wrong: List[str] = []
    outcome = _classify(run)
    expected, want_after = expected_outcomes(c, read)
    if "Traceback" in run.err or run.rc not in (0, 1, 2):
        wrong.append(f"traceback or exit {run.rc}: {run.err[-600:]}")
    if outcome not in expected:
        wrong.append(f"outcome {outcome}, expected one of {sorted(expected)}: {run.err.strip()[:300]}")
    if run.rc != 0:
        lines = [ln for ln in run.err.splitlines() if ln.strip()]
        if len(lines) != 1 or not lines[0].startswith("apply_patches: error:"):
            wrong.append(f"the refusal is not one line: {run.err[:400]!r}")
        for name in c.names:
            if name not in run.err:
                wrong.append(f"the refusal does not name {name!r}: {run.err.strip()[:300]}")
        if after != before:
            wrong.append("the tree changed although the run refused: " + _diff(before, after))
        return Verdict(c.label, outcome, wrong)
    _check_claims(c, run.report or {"trees": []}, read, wrong)
    if outcome == "applied" and c.mode != "check":
        _check_applied(c, read, want_after, before, after, wrong)
    elif after != before:
        wrong.append(f"the tree changed although the outcome is {outcome}: " + _diff(before, after))
    return Verdict(c.label, outcome, wrong)


def _check_claims(c: Case, rep: dict, read: Dict[str, Optional[bytes]], wrong: List[str]) -> None:
    """Every status backed by the text the tool should have read."""
    for t in rep.get("trees", []):
        for p in t["patches"]:
            if p["state"] == "fixed-upstream" and c.kind != "check-removed":
                wrong.append(f"fixed-upstream claimed for a {c.kind} text")
            if p["state"] == "not-needed":
                rel = p.get("path")
                data = read.get(rel) if rel else None
                try:
                    found = data is None or bool(c.base.rule.file(rel).scan(data))
                except ValueError:
                    found = True
                if found:
                    wrong.append(f"not-needed claimed for {rel}, which the rule cannot read or has calls in")


def _check_applied(c: Case, read: Dict[str, Optional[bytes]], want_after: Dict[str, bytes],
                   before: Dict[str, tuple], after: Dict[str, tuple], wrong: List[str]) -> None:
    """Exactly the intended change: each touched file's real file as it must be, nothing else changed."""
    allowed = set()
    for rel in c.base.touched:
        real = _real_of(c, rel)
        allowed.add(os.path.relpath(real, c.dir))
        now = real.read_bytes() if real.is_file() else None
        if c.base.target == "tensorflow":
            why = _tf_result_ok(read[rel] or b"", now or b"", c.base.old, c.base.new)
            if why:
                wrong.append(f"{rel} (-> {real}): {why}")
        elif rel in want_after and now != want_after[rel]:
            wrong.append(f"{rel}: not exactly the rule's change")
        elif rel not in want_after and now != read.get(rel):
            wrong.append(f"{rel}: changed although the rule changes nothing in it")
    others = {k: v for k, v in before.items() if k not in allowed}
    now = {k: v for k, v in after.items() if k not in allowed}
    if others != now:
        wrong.append("something besides the patched files changed: " + _diff(others, now))
    if c.git and c.mode == "commit":
        status = git(c.tree, "status", "--porcelain")
        if status.strip():
            wrong.append(f"--commit left changes: {status!r}")


def _diff(a: Dict[str, tuple], b: Dict[str, tuple]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(keys[:5]) or "(git state)"


def readable_view(c: Case) -> Dict[str, Optional[bytes]]:
    """The touched files as the tool should read them (through any link), None when not readable."""
    out: Dict[str, Optional[bytes]] = {}
    for rel in c.base.touched:
        p = c.tree / rel
        try:
            out[rel] = p.read_bytes() if p.is_file() else None
        except OSError:
            out[rel] = None
    return out


def exercise(c: Case, unpriv: Optional[Unprivileged] = None, roundtrip: bool = True) -> Verdict:
    """Run the tool on the case's tree and judge it; after an apply, a second run (nothing may change) and
    a reverse (the mutated tree must come back)."""
    read = readable_view(c)
    if c.unprivileged:
        if unpriv is None:
            raise RuntimeError("a permission case needs an unprivileged runner")
        os.chmod(c.dir, 0o755)
        unpriv.own(c.dir)
        before = snap(c.dir)
        saved = _apply_permission(c)
        try:
            run = unpriv.run(cli_args(c), c.dir)
        finally:
            for p, mode in saved:
                os.chmod(p, mode)
        return judge(c, run, before, snap(c.dir), read)
    before = snap(c.dir)
    hook = None
    if c.hook is not None:
        def hook():
            c.hook()
            c.hook_state["snap"] = snap(c.dir)  # what the tree is once the other writer is done
    run = run_in_process(cli_args(c), hook)
    after = snap(c.dir)
    verdict = judge(c, run, c.hook_state.get("snap", before), after, read)
    if c.hook is not None and "snap" not in c.hook_state:
        verdict.wrong.append("the run never reached the point between the plan and the write")
    if roundtrip and verdict.ok and verdict.outcome == "applied" and c.mode in ("apply", "commit"):
        _roundtrip(c, read, before, verdict)
    return verdict


def _roundtrip(c: Case, read: Dict[str, Optional[bytes]], before: Dict[str, tuple], verdict: Verdict) -> None:
    mid = snap(c.dir)
    again = run_in_process(cli_args(c))
    states = {p["state"] for t in (again.report or {"trees": []})["trees"] for p in t["patches"]}
    if again.rc != 0 or not states <= {"already-applied", "not-needed", "not-present", "fixed-upstream"}:
        verdict.wrong.append(f"a second run: exit {again.rc}, states {sorted(states)}: {again.err[:200]}")
    elif snap(c.dir) != mid:
        verdict.wrong.append("a second run changed the tree")
    back = run_in_process(cli_args(c, "--reverse"))
    end = snap(c.dir)
    if back.rc != 0:
        verdict.wrong.append(f"--reverse failed: {back.err.strip()[:300]}")
    elif c.mode != "commit" and end != before:
        verdict.wrong.append("--reverse did not give the tree back: " + _diff(before, end))
    elif c.mode == "commit":
        for rel in c.base.touched:
            if read.get(rel) is not None and _real_of(c, rel).read_bytes() != read[rel]:
                verdict.wrong.append(f"--reverse --commit did not give {rel} back")


def _apply_permission(c: Case) -> List[Tuple[Path, int]]:
    """Make the case's file or folder unreadable/unwritable; returns what to put back."""
    target = c.tree / c.rel
    p = target.parent if c.kind.endswith("-dir") else target
    modes = {"unreadable-file": 0, "unreadable-dir": 0, "unwritable-file": 0o444, "unwritable-dir": 0o555}
    mode = modes[c.kind]
    saved = [(p, stat.S_IMODE(os.lstat(p).st_mode))]
    os.chmod(p, mode)
    return saved


# -- a batch ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def scratch_space(fallback: Optional[Path] = None):
    """A directory for the trees, in memory (/dev/shm) where the machine has one: thousands of small trees,
    journals and fsyncs cost little there. The tool's own temporary files go there too. Removed after."""
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else fallback
    where = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-odd-", dir=parent))
    os.chmod(where, 0o755)
    saved = tempfile.tempdir
    tempfile.tempdir = str(where / "tmp")
    (where / "tmp").mkdir()
    try:
        yield where
    finally:
        tempfile.tempdir = saved
        for dirpath, dirnames, _ in os.walk(where):
            for n in dirnames:
                p = os.path.join(dirpath, n)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
        shutil.rmtree(where, ignore_errors=True)



def plan(n: int, seed: int, kinds_tf=TF_KINDS, kinds_models=MODELS_KINDS, permissions: bool = True):
    """``n`` (target, kind, git, mode, seed) tuples, every kind covered before any repeats."""
    rng = random.Random(seed)
    pool = [("tensorflow", k) for k in kinds_tf] + [("models", k) for k in kinds_models]
    if not permissions:
        pool = [p for p in pool if p[1] not in PERMISSION_KINDS]
    out = []
    while len(out) < n:
        batch = pool[:]
        rng.shuffle(batch)
        for target, kind in batch:
            if len(out) >= n:
                break
            git_tree = rng.random() < 0.5
            modes = ["apply", "apply", "check"] + (["commit"] if git_tree else [])
            mode = rng.choice(modes)
            if kind in ("replaced-mid-run", "relinked-mid-run") and mode == "check":
                mode = "apply"
            out.append((target, kind, git_tree, mode, rng.randrange(1 << 30)))
    return out
