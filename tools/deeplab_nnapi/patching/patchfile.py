"""Patch files: parse a (git) unified diff into files, blob ids and hunks, and turn ``git apply``'s
error output into one line that names the patch, the file and the hunk."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from deeplab_nnapi.errors import UsageError


@dataclass
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header: str


@dataclass
class FileDiff:
    old_path: Optional[str]  # None for a created file
    new_path: Optional[str]  # None for a deleted file
    old_blob: Optional[str] = None
    new_blob: Optional[str] = None
    hunks: List[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    def paths(self) -> List[str]:
        return [p for p in dict.fromkeys([self.old_path, self.new_path]) if p]


@dataclass
class ParsedPatch:
    files: List[FileDiff]

    def paths(self) -> List[str]:
        out: List[str] = []
        for f in self.files:
            out.extend(p for p in f.paths() if p not in out)
        return out

    def file(self, path: str) -> Optional[FileDiff]:
        for f in self.files:
            if path in (f.old_path, f.new_path):
                return f
        return None


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDEX = re.compile(r"^index ([0-9a-f]+)\.\.([0-9a-f]+)")


def _unquote(raw: str) -> str:
    raw = raw.rstrip("\n")
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        body = raw[1:-1].encode("ascii", "backslashreplace").decode("unicode_escape")
        return body.encode("latin-1").decode("utf-8", "replace")
    return raw.split("\t")[0]


def _strip_prefix(p: str) -> Optional[str]:
    if p == "/dev/null":
        return None
    if p.startswith(("a/", "b/")):
        return p[2:]
    return p


def parse_patch(data: bytes) -> ParsedPatch:
    """Files, blob ids and hunks of a (git) unified diff. Raises ValueError on a malformed hunk."""
    lines = data.decode("utf-8", "replace").splitlines()
    files: List[FileDiff] = []
    cur: Optional[FileDiff] = None
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if line.startswith("diff --git "):
            m = re.match(r'^diff --git ("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$', line)
            old = new = None
            if m:
                old, new = _strip_prefix(_unquote(m.group(1))), _strip_prefix(_unquote(m.group(2)))
            cur = FileDiff(old_path=old, new_path=new)
            files.append(cur)
        elif cur is not None and line.startswith("new file mode"):
            cur.old_path = None
        elif cur is not None and line.startswith("deleted file mode"):
            cur.new_path = None
        elif cur is not None and line.startswith(("rename from ", "copy from ")):
            cur.old_path = _unquote(line.split(" from ", 1)[1])
        elif cur is not None and line.startswith(("rename to ", "copy to ")):
            cur.new_path = _unquote(line.split(" to ", 1)[1])
        elif cur is not None and (m := _INDEX.match(line)):
            cur.old_blob, cur.new_blob = m.group(1), m.group(2)
        elif line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            old = _strip_prefix(_unquote(line[4:]))
            new = _strip_prefix(_unquote(lines[i + 1][4:]))
            if cur is None or cur.hunks:
                cur = FileDiff(old_path=old, new_path=new)
                files.append(cur)
            else:
                cur.old_path, cur.new_path = old, new
            i += 1
        elif line.startswith("@@ ") and cur is not None:
            m = _HUNK.match(line)
            if not m:
                raise ValueError(f"malformed hunk header: {line}")
            h = Hunk(
                int(m.group(1)),
                int(m.group(2) if m.group(2) is not None else 1),
                int(m.group(3)),
                int(m.group(4) if m.group(4) is not None else 1),
                line,
            )
            cur.hunks.append(h)
            old_left, new_left = h.old_len, h.new_len
            while (old_left > 0 or new_left > 0) and i + 1 < n:
                i += 1
                body = lines[i]
                tag = body[:1]
                if tag == "\\":
                    continue
                if tag in (" ", ""):
                    old_left -= 1
                    new_left -= 1
                elif tag == "-":
                    old_left -= 1
                elif tag == "+":
                    new_left -= 1
                else:
                    raise ValueError(f"malformed hunk line {i + 1}: {body[:40]!r}")
            if old_left > 0 or new_left > 0:
                raise ValueError(f"truncated hunk {line}")
        i += 1
    return ParsedPatch(files)


def describe_failure(
    name: str, file: str, parsed: ParsedPatch, tree_path, err: str, reverse: bool
) -> Tuple[str, Optional[str], Optional[str]]:
    """(message tail, file, hunk text) from git apply's stderr."""
    if "corrupt patch" in err or "No valid patches" in err or "unrecognized input" in err:
        raise UsageError(f"patch {name}: {file} is not a valid patch: {_last_error_line(err)}")
    m = re.search(r"error: patch failed: (.+):(\d+)$", err, re.M)
    if m:
        path, line = m.group(1), int(m.group(2))
        fd = parsed.file(path)
        hunk_txt = None
        if fd is not None and fd.hunks:
            starts = [(h.new_start if reverse else h.old_start) for h in fd.hunks]
            idx = (
                starts.index(line)
                if line in starts
                else max((k for k, s in enumerate(starts) if s <= line), default=0)
            )
            h = fd.hunks[idx]
            hunk_txt = f"hunk #{idx + 1} of {len(fd.hunks)} ({h.header.split(' @@')[0]} @@)"
        searched = _searched_line(err)
        tail = f"{path}: {hunk_txt or f'hunk at line {line}'} does not match"
        if searched:
            tail += f" (expected text starting {searched!r})"
        return tail, path, hunk_txt
    m = re.search(r"error: (.+): does not exist in index", err)
    if m:
        return (
            f"{m.group(1)}: file is missing from the tree (is {tree_path} the top of the tree?)",
            m.group(1),
            None,
        )
    m = re.search(r"error: (.+): already exists in (?:index|working directory)", err)
    if m:
        return f"{m.group(1)}: file already exists", m.group(1), None
    m = re.search(r"Applied patch to '(.+)' with conflicts", err)
    if m:
        return f"{m.group(1)}: 3-way merge left conflicts", m.group(1), None
    return _last_error_line(err) or "git apply failed", None, None


def _last_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    return lines[-1][len("error:") :].strip() if lines else (err.strip().splitlines() or [""])[-1]


def _searched_line(err: str) -> Optional[str]:
    lines = err.splitlines()
    for k, ln in enumerate(lines):
        if ln.startswith("error: while searching for:"):
            for cand in lines[k + 1 :]:
                if cand.startswith("error:"):
                    return None
                if cand.strip():
                    s = cand.strip()
                    return s if len(s) <= 60 else s[:57] + "..."
    return None
