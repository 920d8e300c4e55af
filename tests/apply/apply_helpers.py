"""Helpers for the apply_patches tests: git repos, format-patch files and manifests built in tmp_path.

No upstream file is copied: the TensorFlow-like trees here hold synthetic text, and the real patches
are exercised on files rebuilt from the patches' own pre-images (see ``preimage_from_patch``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
# The real manifest; DEEPLAB_NNAPI_PATCHES (read at import, before the fixtures clear it) points
# the real-patch tests at another patches directory.
REAL_MANIFEST = Path(os.environ.get("DEEPLAB_NNAPI_PATCHES") or REPO_ROOT / "patches") / "manifest.toml"
NNAPI = "tensorflow/lite/delegates/nnapi/nnapi_delegate.cc"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Test Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}


def git(repo: Path, *args: str, input: Optional[bytes] = None, env: Optional[Dict[str, str]] = None) -> str:
    full_env = {**os.environ, **GIT_ENV, **(env or {})}
    res = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, env=full_env)
    if res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {res.stderr.decode()}")
    return res.stdout.decode()


def write_files(root: Path, files: Dict[str, Optional[str]]) -> None:
    for rel, text in files.items():
        p = root / rel
        if text is None:
            p.unlink()
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode() if isinstance(text, str) else text)


def make_repo(path: Path, files: Dict[str, str], message: str = "base") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    write_files(path, files)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return path


def commit_all(repo: Path, message: str, env: Optional[Dict[str, str]] = None) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD").strip()


def format_patch(
    repo: Path,
    files: Dict[str, Optional[str]],
    subject: str,
    body: str = "",
    author: str = "Patch Author",
    email: str = "author@example.org",
    date: str = "2021-03-04T05:06:07+00:00",
) -> bytes:
    """Commit ``files`` on top of HEAD in ``repo``, return ``git format-patch`` bytes, drop the commit."""
    write_files(repo, files)
    msg = subject + ("\n\n" + body if body else "")
    commit_all(repo, msg, env={"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date})
    data = subprocess.run(
        ["git", "format-patch", "-1", "--stdout", "HEAD"],
        cwd=repo,
        capture_output=True,
        check=True,
        env=dict(os.environ, **GIT_ENV),
    ).stdout
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_manifest(root: Path, entries: Sequence[dict]) -> Path:
    """Write patches (entry['data']) and a manifest.toml under ``root``; sha256 computed unless given."""
    root.mkdir(parents=True, exist_ok=True)
    out = ["schema = 1", ""]
    for e in entries:
        e = dict(e)
        data = e.pop("data", None)
        if data is not None:
            (root / e["file"]).parent.mkdir(parents=True, exist_ok=True)
            (root / e["file"]).write_bytes(data)
        e.setdefault("sha256", sha256((root / e["file"]).read_bytes()))
        e.setdefault("purpose", "test patch")
        e.setdefault("verified_against", ["synthetic"])
        e.setdefault("order", 1)
        out.append("[[patch]]")
        for k, v in e.items():
            if v is None:
                continue
            if isinstance(v, list):
                out.append(f"{k} = [{', '.join(toml_str(x) for x in v)}]")
            elif isinstance(v, int):
                out.append(f"{k} = {v}")
            else:
                out.append(f"{k} = {toml_str(v)}")
        out.append("")
    path = root / "manifest.toml"
    path.write_text("\n".join(out))
    return path


def snapshot(tree: Path) -> dict:
    """Every work-tree file's bytes and mode, plus git status and HEAD (when a repo)."""
    files = {}
    for p in sorted(tree.rglob("*")):
        if ".git" in p.relative_to(tree).parts or p.is_dir():
            continue
        files[str(p.relative_to(tree))] = (p.read_bytes(), p.stat().st_mode)
    snap = {"files": files}
    if (tree / ".git").exists():
        snap["status"] = git(tree, "status", "--porcelain=v1", "--untracked-files=all")
        snap["head"] = git(tree, "rev-parse", "HEAD").strip()
        snap["index"] = git(tree, "ls-files", "-s")
    return snap


def version_h(major: int, minor: int, patch: int, suffix: str = "") -> str:
    return (
        "// synthetic version header for tests\n"
        "#ifndef TEST_VERSION_H_\n#define TEST_VERSION_H_\n\n"
        f"#define TF_MAJOR_VERSION {major}\n#define TF_MINOR_VERSION {minor}\n"
        f"#define TF_PATCH_VERSION {patch}\n\n"
        f'#define TF_VERSION_SUFFIX "{suffix}"\n\n#endif\n'
    )


def delegate_source(
    limit_line: str = "      if (pool_area > 256) return false;  // synthetic check", extra_top: str = ""
) -> str:
    """Synthetic stand-in for the delegate: filler lines around a one-line 'check'."""
    lines = [f"// synthetic line {i}" for i in range(1, 41)]
    lines[20] = "    case kSyntheticAveragePool:"
    lines[21] = limit_line
    lines[22] = "      break;"
    return extra_top + "\n".join(lines) + "\n"


RELAXED = "      // synthetic check relaxed for DeepLab"


# -- rebuilding a file from a patch's own pre-image ---------------------------------------------
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _join(lines: List[str], eol: bool) -> str:
    return "\n".join(lines) + ("\n" if eol else "")


def preimage_from_patch(patch: bytes) -> Dict[str, str]:
    """For each file a patch modifies: a text whose lines at each hunk's old position are the hunk's
    context + removed lines, with filler lines elsewhere (so the hunk line numbers match exactly)."""
    return {path: _join(info["pre"], info["old_eol"]) for path, info in parse_hunks(patch).items()}


def postimage_from_patch(patch: bytes) -> Dict[str, str]:
    """The text ``preimage_from_patch`` becomes when exactly the patch's hunks are applied."""
    out = {}
    for path, info in parse_hunks(patch).items():
        lines = list(info["pre"])
        for h in reversed(info["hunks"]):
            start = h["old_start"] - 1
            lines[start : start + len(h["old"])] = h["new"]
        out[path] = _join(lines, info["new_eol"])
    return out


def parse_hunks(patch: bytes) -> Dict[str, dict]:
    """{path: {"hunks": [{old_start, old, new}], "pre": [lines], "old_eol", "new_eol"}} for every file a
    patch modifies (created and deleted files are left out)."""
    out: Dict[str, dict] = {}
    lines = patch.decode("utf-8").splitlines()
    path = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old_path = ln[4:].split("\t")[0]
            path = lines[i + 1][4:].split("\t")[0]
            path = path[2:] if path.startswith("b/") else path
            if old_path == "/dev/null" or path == "/dev/null":
                path = None  # created or deleted file: no pre-image to rebuild
            else:
                out.setdefault(path, {"hunks": [], "old_eol": True, "new_eol": True})
            i += 2
            continue
        m = _HUNK.match(ln)
        if m and path:
            old_start, old_len = int(m.group(1)), int(m.group(2) or 1)
            new_len = int(m.group(4) or 1)
            old, new, tags = [], [], []
            o, n = old_len, new_len
            while i + 1 < len(lines) and (o > 0 or n > 0 or lines[i + 1].startswith("\\")):
                i += 1
                body = lines[i]
                if body.startswith("\\"):
                    last = tags[-1] if tags else " "
                    if last in (" ", "-"):
                        out[path]["old_eol"] = False
                    if last in (" ", "+"):
                        out[path]["new_eol"] = False
                    continue
                tag, text = (body[:1] or " "), body[1:]
                tags.append(tag)
                if tag == " ":
                    old.append(text)
                    new.append(text)
                    o -= 1
                    n -= 1
                elif tag == "-":
                    old.append(text)
                    o -= 1
                elif tag == "+":
                    new.append(text)
                    n -= 1
            lead = next((k for k, t in enumerate(tags) if t != " "), len(tags))
            trail = next((k for k, t in enumerate(reversed(tags)) if t != " "), len(tags))
            out[path]["hunks"].append(
                {"old_start": old_start, "old": old, "new": new, "at_end": trail < lead}
            )
        i += 1
    for info in out.values():
        text: List[str] = []
        for h in info["hunks"]:
            while len(text) < h["old_start"] - 1:
                text.append(f"// filler line {len(text) + 1} (test fixture)")
            text.extend(h["old"])
        last = info["hunks"][-1] if info["hunks"] else None
        if last is not None and not last["at_end"] and info["old_eol"]:
            text.extend(f"// trailing filler {k} (test fixture)" for k in range(3))
        info["pre"] = text
    return out


def delegate_file(patch: bytes, drop_check: bool = False) -> Dict[str, str]:
    """For each file a (TensorFlow) patch modifies: a *complete* C++ text around the hunks' context and
    removed lines: namespaces, a function, a switch whose AVERAGE_POOL_2D case holds the hunks, other
    cases, every brace closed. What the evidence for fixed-upstream looks at (the case label, balanced
    braces) is there, as in a real delegate. ``drop_check`` leaves out the check itself (the ``if``/
    ``Expect`` statement holding the 256 comparison), as TF 1.13/1.14 and forks that removed it."""
    from deeplab_nnapi.patching.evidence import unbalanced

    out = {}
    for path, info in parse_hunks(patch).items():
        body: List[str] = []
        for h in info["hunks"]:
            body.extend(h["old"])
        if drop_check:
            body = _without_check(body)
        opened = _open_brackets("\n".join(body))
        closers = [{"{": "}", "(": ")", "[": "]"}[c] for c in reversed(opened)]
        tail = []
        if body and body[-1].rstrip().endswith(")") and "return" in body[-1]:  # shape a: a lambda follows
            tail.append("          { return kTfLiteOk; };")
        lines = [
            "// Test fixture: a delegate-like text built around a patch's own hunk (not upstream code).",
            '#include "tensorflow/lite/delegates/nnapi/nnapi_delegate.h"',
            "",
            "namespace tflite {",
            "namespace delegate {",
            "namespace nnapi {",
            "",
            "bool NNAPIDelegateKernel::Validate(const TfLiteContext* context, int builtin_code, int version,",
            "                                   bool is_accelerator_specified) {",
            "  OpValidationContext val_ctx{true, nullptr};",
            "  switch (builtin_code) {",
            "    case kTfLiteBuiltinAdd: {",
            "      ExpectMaxOpVersion(version, 2, &val_ctx);",
            "    } break;",
            "    case kTfLiteBuiltinAveragePool2d: {",
            "      ExpectMaxOpVersion(version, 2, &val_ctx);",
            "      ExpectIsFloatOrQuant8Operator(context, node, &val_ctx);",
            *body,
            *tail,
            *("      " + c + (";" if c == ")" else "") for c in closers),
            *([] if any(re.match(r"\s*\} break;", ln) for ln in body) else ["    } break;"]),
            "    case kTfLiteBuiltinMaxPool2d: {",
            "      ExpectMaxOpVersion(version, 2, &val_ctx);",
            "      ExpectIsFloatOrQuant8Operator(context, node, &val_ctx);",
            "    } break;",
            "    default:",
            "      return false;",
            "  }",
            "  return val_ctx.is_valid;",
            "}",
            "",
            *(f"// filler line {i} (test fixture)" for i in range(40)),
            "",
            "}  // namespace nnapi",
            "}  // namespace delegate",
            "}  // namespace tflite",
        ]
        text = "\n".join(lines) + "\n"
        problem = unbalanced(text)
        assert problem is None, f"fixture for {path}: {problem}"
        out[path] = text
    return out


def _open_brackets(text: str) -> List[str]:
    stack: List[str] = []
    pairs = {"}": "{", ")": "(", "]": "["}
    for c in re.sub(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*', "", text):
        if c in "{([":
            stack.append(c)
        elif c in pairs and stack and stack[-1] == pairs[c]:
            stack.pop()
    return stack


def _without_check(body: List[str]) -> List[str]:
    """The lines without the statement that holds the 256 comparison (an ``if`` block or an ``Expect``)."""
    k = next(i for i, ln in enumerate(body) if "256" in ln)
    start = k
    while start > 0 and not re.match(r"\s*(if \(|Expect\()", body[start]):
        start -= 1
    depth, end = 0, start
    for end in range(start, len(body)):
        depth += body[end].count("(") + body[end].count("{") - body[end].count(")") - body[end].count("}")
        if depth <= 0 and body[end].rstrip().endswith((";", "}")):
            break
    kept = body[:start] + body[end + 1 :]
    return kept


class TFWorld:
    """A synthetic TensorFlow-like git repo plus a two-patch manifest against it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.src = make_repo(
            tmp / "upstream",
            {
                "tensorflow/core/public/version.h": version_h(2, 4, 1),
                NNAPI: delegate_source(),
                "tensorflow/lite/other.cc": "\n".join(f"// other {i}" for i in range(30)) + "\n",
                "README": "synthetic tree\n",
            },
        )
        self.p1 = format_patch(
            self.src,
            {NNAPI: delegate_source(RELAXED)},
            "nnapi: relax the synthetic pool check",
            "Longer explanation of why.\n\nSecond paragraph.",
        )
        other = (
            (self.src / "tensorflow/lite/other.cc").read_text().replace("// other 15", "// other 15 patched")
        )
        self.p2 = format_patch(self.src, {"tensorflow/lite/other.cc": other}, "other: second patch")
        self.patches_dir = tmp / "patches"
        self.manifest = write_manifest(
            self.patches_dir,
            [
                dict(
                    name="tf-relax",
                    target="tensorflow",
                    file="tensorflow/0001-relax.patch",
                    data=self.p1,
                    versions=">=2.0",
                    order=1,
                    touches=[NNAPI],
                    fixed_marker=r"pool_area > 256",
                    fixed_evidence=r"case kSyntheticAveragePool:",
                ),
                dict(
                    name="tf-other",
                    target="tensorflow",
                    file="tensorflow/0002-other.patch",
                    data=self.p2,
                    versions=">=2.0",
                    order=2,
                    touches=["tensorflow/lite/other.cc"],
                ),
            ],
        )

    def clone(self, name: str = "tree") -> Path:
        dest = self.tmp / name
        git(self.tmp, "clone", "-q", str(self.src), str(dest))
        return dest


class ModelsWorld:
    """A synthetic DeepLab history (legacy -> helper -> final, see deeplab_like.py) and the patch set the
    generator makes from it with the real rule (patches/models/rule.toml)."""

    def __init__(self, tmp: Path):
        import shutil

        from deeplab_like import files
        from deeplab_nnapi.patching.generate import generate
        from deeplab_nnapi.patching.patchset import write_patch_set
        from deeplab_nnapi.patching.rulefile import load_rule

        self.tmp = tmp
        self.files = files
        self.history = make_repo(tmp / "history", files("legacy"), message="legacy layout")
        self.commits = {"legacy": git(self.history, "rev-parse", "HEAD").strip()}
        for state in ("helper", "final"):
            for rel in files("legacy"):
                (self.history / rel).unlink(missing_ok=True)
            write_files(self.history, files(state))
            self.commits[state] = commit_all(self.history, f"{state} layout")
        self.patches_dir = tmp / "patches"
        (self.patches_dir / "models").mkdir(parents=True)
        shutil.copy(REAL_MANIFEST.parent / "models" / "rule.toml", self.patches_dir / "models" / "rule.toml")
        self.rule = load_rule(self.patches_dir / "models" / "rule.toml")
        self.generated = generate(self.history, self.rule, ref="HEAD")
        write_patch_set(self.generated, self.patches_dir)
        self.manifest = self.patches_dir / "manifest.toml"
        self.manifest.write_text('schema = 1\ninclude = ["models/manifest.toml"]\n')

    def tree(self, state: str, name: Optional[str] = None, extra: str = "", repo: bool = True) -> Path:
        path = self.tmp / (name or state)
        if repo:
            return make_repo(path, self.files(state, extra))
        write_files(path, self.files(state, extra))
        return path
