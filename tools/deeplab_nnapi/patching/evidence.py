"""What a status claims, and the text that backs it.

A status is a claim about a text the tool has read (never a link's own text: see :mod:`.treefiles`):

* ``fixed-upstream`` (TensorFlow): "this text no longer has the check". Claimed only when the text is
  readable source (UTF-8, an optional BOM, no NUL byte), complete (its braces and parentheses balance
  outside comments and literals: a file cut short does not), has the code the check lived in (the
  manifest's ``fixed_evidence``: the AVERAGE_POOL_2D case) and neither the check (``fixed_marker``) nor
  any trace of it (``check_traces``: the comparison, the failure message). Anything less is a conflict.
* ``applied``/``already-applied`` (TensorFlow): the result has the patch's change and no check is left
  anywhere in the file (a file with the check twice is not half-patched and called done).
* ``not-needed`` (tensorflow/models): the file parses as Python, imports TensorFlow and defines functions,
  and the rule finds no call it changes.
"""

from __future__ import annotations

import ast
import re
from typing import Iterable, Optional

from deeplab_nnapi.patching.manifest import Patch


def text_problem(data: bytes) -> Optional[str]:
    """Why ``data`` is not source text the tool can read, or None."""
    if b"\0" in data:
        return "it holds NUL bytes (binary data)"
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"it is not UTF-8 text (byte {exc.start})"
    return None


_PAIRS = {"}": "{", ")": "(", "]": "["}


def _ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


_DIRECTIVE = re.compile(r"[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b")


def _skip_other_branch(text: str, i: int) -> int:
    """From an ``#else``/``#elif`` line at ``i``: where its ``#endif`` line ends (only the first branch of
    a conditional is counted: both branches may open the same brace)."""
    depth = 0
    for m in re.finditer(r"(?m)^[ \t]*#[ \t]*(if|ifdef|ifndef|endif)\b.*$", text[i:]):
        if m.group(1) == "endif":
            if depth == 0:
                return i + m.end()
            depth -= 1
        else:
            depth += 1
    return len(text)


def unbalanced(text: str) -> Optional[str]:
    """Where the braces, parentheses and brackets of C-like ``text`` stop balancing (outside comments,
    string and character literals, counting the first branch of each preprocessor conditional), or None
    when they balance (the file is complete)."""
    stack = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if (i == 0 or text[i - 1] == "\n") and (m := _DIRECTIVE.match(text, i)):
            if m.group(1) in ("else", "elif"):
                nl = text.find("\n", i)
                end = _skip_other_branch(text, n if nl < 0 else nl + 1)
                line += text.count("\n", i, end)
                i = end
                continue
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                return f"a comment opened at line {line} is not closed"
            line += text.count("\n", i, j)
            i = j + 2
            continue
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not _ident_char(text[i - 1])):
            m = re.match(r'R"([^()\\\s]{0,16})\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i + m.end())
                if end < 0:
                    return f"a raw string opened at line {line} is not closed"
                line += text.count("\n", i, end)
                i = end + len(m.group(1)) + 2
                continue
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n":
                    break
                j += 1
            if j >= n or text[j] != c:
                if c == "'":  # a digit separator (1'000) or an apostrophe in odd code: not a literal
                    i += 1
                    continue
                return f"a string opened at line {line} is not closed"
            i = j + 1
            continue
        elif c in "{([":
            stack.append((c, line))
        elif c in "})]":
            if not stack or stack[-1][0] != _PAIRS[c]:
                return f"an unmatched {c!r} at line {line}"
            stack.pop()
        i += 1
    if stack:
        return f"a {stack[-1][0]!r} opened at line {stack[-1][1]} is not closed (the file ends early)"
    return None


def _decoded(data: bytes) -> str:
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    return body.decode("utf-8")


def check_present(patch: Patch, data: bytes) -> bool:
    """Whether the check the patch relaxes (its ``fixed_marker``) is still in ``data``."""
    if not patch.fixed_marker:
        return False
    return re.search(patch.fixed_marker, data.decode("utf-8", "replace"), re.M) is not None


def why_not_fixed_upstream(patch: Patch, texts: Iterable[bytes]) -> Optional[str]:
    """None when the texts (of the files the patch touches) show the check is gone; otherwise what is
    missing for that claim (one phrase)."""
    if not patch.fixed_marker or not patch.fixed_evidence:
        return "the manifest names no form of this file without the check"
    seen = False
    for data in texts:
        seen = True
        bad = text_problem(data)
        if bad:
            return f"the file is not readable source: {bad}"
        text = _decoded(data)
        if re.search(patch.fixed_marker, text, re.M):
            return "the check is there"
        for trace in patch.check_traces:
            m = re.search(trace, text, re.M)
            if m:
                line = text.count("\n", 0, m.start()) + 1
                return (f"a trace of the check is there (line {line}: {m.group(0)[:40]!r}), in a form no "
                        "patch knows")
        if not re.search(patch.fixed_evidence, text, re.M):
            return "the code the check lives in is not there either (not a delegate text this tool knows)"
        bad = unbalanced(text)
        if bad:
            return f"the file looks incomplete: {bad}"
    return None if seen else "the file is missing"


def why_not_a_known_module(src: bytes) -> Optional[str]:
    """None when ``src`` (which the rule parsed and found no call to change in) is a module the rule
    knows the kind of: it imports TensorFlow and defines functions. Otherwise what is missing."""
    bad = text_problem(src)
    if bad:
        return f"it is not readable source: {bad}"
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError) as exc:  # pragma: no cover - the rule parsed it already
        return f"it is not Python ({exc.__class__.__name__})"
    imports_tf = any(
        (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "tensorflow" for a in n.names))
        or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "tensorflow")
        for n in ast.walk(tree)
    )
    if not imports_tf:
        return "it does not import TensorFlow"
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree)):
        return "it defines no function"
    return None
