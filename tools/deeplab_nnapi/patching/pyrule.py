"""A declarative edit of Python calls: "in these functions of this file, calls to these TensorFlow
functions get keyword K = V". The DeepLab patches are generated from such a rule, and the patch engine
uses the same rule to tell, for any text of the file, which call sites still need the change.

The edit is made on the source text, at the exact positions :mod:`ast` reports, so everything else in the
file (formatting, comments, the rest of the line) stays byte-identical. A call site is in one of three
states:

* ``todo``: the keyword has the upstream value (``align_corners=True``), or is absent where the rule
  adds it (``tf.argmax(x, 3)``, whose default output is int64);
* ``done``: the keyword has the value the rule sets (``align_corners=False``, ``output_type=tf.int32``),
  or is absent where the default is already right (``tf.image.resize_bilinear(x, s)``);
* ``unknown``: anything else (a variable, the parameter passed by position, ``**kwargs``): the rule cannot
  decide, and neither can a tool; such a site is reported, never edited.

Only calls on the module's TensorFlow alias are considered (``tf.image.resize_bilinear``,
``tf.compat.v1.image.resize_bilinear``, ``tf.math.argmax``), never DeepLab's own helpers of the same
name (``_resize_bilinear``, ``utils.resize_bilinear``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import List, Optional, Sequence, Set, Tuple

TODO, DONE, UNKNOWN = "todo", "done", "unknown"

#: Column limit for an added keyword; past it the keyword goes on its own line, aligned with the call's
#: first argument (the style of the code DeepLab is written in).
MAX_LINE = 80


@dataclass(frozen=True)
class CallEdit:
    """One line of a rule: the keyword ``keyword`` of calls to TF functions named ``calls``."""

    calls: Tuple[str, ...]  # last attribute of the called name: "resize_bilinear", "argmax"
    keyword: str  # "align_corners", "output_type"
    position: int  # the keyword's index when passed by position (0-based)
    to: str  # the value the rule sets; "{tf}" stands for the module's TensorFlow alias
    upstream: Optional[str]  # the value it replaces; None = the keyword is absent upstream (added)
    within: Tuple[str, ...] = ()  # only inside these functions (any nesting); () = anywhere in the file
    why: str = ""

    @property
    def adds(self) -> bool:
        return self.upstream is None


@dataclass(frozen=True)
class Site:
    """A call the rule looks at."""

    edit: CallEdit
    line: int  # 1-based line of the call
    function: str  # the called name as written: "tf.image.resize_bilinear"
    scope: str  # enclosing function ("" at module level)
    state: str  # todo | done | unknown
    value: Optional[str]  # the keyword's source text, None when absent
    # byte offsets in the source: (start, end) of the keyword's value, or the insertion point when absent
    span: Tuple[int, int]
    # for an absent keyword: where the call's last argument ends and its first argument starts (column)
    first_arg_col: int = 0
    # for a present keyword: (start, end) of ", keyword=value" (from the end of the previous argument)
    kw_span: Optional[Tuple[int, int]] = None

    def describe(self) -> str:
        have = f"{self.edit.keyword}={self.value}" if self.value is not None else f"no {self.edit.keyword}"
        return f"line {self.line}: {self.function}({have})" + (f" in {self.scope}()" if self.scope else "")


class RuleError(ValueError):
    """The text cannot be handled by the rule (not Python, or a site the rule cannot decide)."""


def _dotted(node: ast.AST) -> Optional[List[str]]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return list(reversed(parts))
    return None


def tf_aliases(tree: ast.AST) -> Set[str]:
    """Names the module binds to TensorFlow (``import tensorflow as tf``, ``import tensorflow.compat.v1
    as tf``, ``from tensorflow.compat import v1 as tf``); ``{"tf"}`` when it imports none of them."""
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "tensorflow" or a.name.startswith("tensorflow."):
                    names.add(a.asname or a.name.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and (node.module == "tensorflow" or node.module.startswith("tensorflow."))
        ):
            for a in node.names:
                if a.name in ("v1", "compat"):
                    names.add(a.asname or a.name)
    return names or {"tf"}


class _Lines:
    """Byte offsets of an ast (line, col) position in the source."""

    def __init__(self, src: bytes):
        self.src = src
        self.starts = [0]
        for i, b in enumerate(src):
            if b == 0x0A:
                self.starts.append(i + 1)

    def off(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col


def _parse(src: bytes, what: str) -> ast.AST:
    try:
        return ast.parse(src, filename=what)
    except (SyntaxError, ValueError) as exc:
        raise RuleError(f"{what}: not Python the rule can read ({exc.__class__.__name__}: {exc})") from None


def scan(src: bytes, edits: Sequence[CallEdit], what: str = "file") -> List[Site]:
    """Every call site the edits look at, in source order."""
    tree = _parse(src, what)
    aliases = tf_aliases(tree)
    lines = _Lines(src)
    sites: List[Site] = []

    def visit(node: ast.AST, scope: Tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = scope + (child.name,)
            if isinstance(child, ast.Call):
                sites.extend(_sites_of(child, inner, edits, aliases, lines, tf_alias=_first(aliases)))
            visit(child, inner)

    visit(tree, ())
    sites.sort(key=lambda s: s.span)
    return sites


def _first(aliases: Set[str]) -> str:
    return "tf" if "tf" in aliases else sorted(aliases)[0]


def _sites_of(call: ast.Call, scope, edits, aliases, lines: _Lines, tf_alias: str) -> List[Site]:
    name = _dotted(call.func)
    if not name or len(name) < 2 or name[0] not in aliases:
        return []
    out = []
    for edit in edits:
        if name[-1] not in edit.calls:
            continue
        if edit.within and not any(s in edit.within for s in scope):
            continue
        out.append(_site(call, ".".join(name), scope[-1] if scope else "", edit, lines, tf_alias))
    return out


def _src(lines: _Lines, node: ast.AST) -> str:
    a = lines.off(node.lineno, node.col_offset)
    b = lines.off(node.end_lineno, node.end_col_offset)
    return lines.src[a:b].decode("utf-8")


def _norm(text: str) -> str:
    return "".join(text.split())


def _site(call: ast.Call, function: str, scope: str, edit: CallEdit, lines: _Lines, tf_alias: str) -> Site:
    target = edit.to.replace("{tf}", tf_alias)
    upstream = edit.upstream.replace("{tf}", tf_alias) if edit.upstream is not None else None
    kw = next((k for k in call.keywords if k.arg == edit.keyword), None)
    has_star = any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args)
    args_nodes: List[ast.AST] = [*call.args, *call.keywords]
    last = max(args_nodes, key=lambda n: (n.end_lineno, n.end_col_offset)) if args_nodes else None
    first = min(args_nodes, key=lambda n: (n.lineno, n.col_offset)) if args_nodes else None
    line = call.lineno
    if kw is not None:
        value = _src(lines, kw.value)
        state = (
            DONE
            if _norm(value) == _norm(target)
            else TODO
            if upstream is not None and _norm(value) == _norm(upstream)
            else UNKNOWN
        )
        span = (
            lines.off(kw.value.lineno, kw.value.col_offset),
            lines.off(kw.value.end_lineno, kw.value.end_col_offset),
        )
        prev = [
            n
            for n in args_nodes
            if n is not kw and (n.end_lineno, n.end_col_offset) <= (kw.lineno, kw.col_offset)
        ]
        kw_span = None
        if prev:
            p = max(prev, key=lambda n: (n.end_lineno, n.end_col_offset))
            kw_span = (lines.off(p.end_lineno, p.end_col_offset), span[1])
        return Site(edit, line, function, scope, state, value, span, kw_span=kw_span)
    if len(call.args) > edit.position or has_star:
        # passed by position (or hidden in *args/**kwargs): not a shape the rule decides
        return Site(edit, line, function, scope, UNKNOWN, "<positional>", (0, 0))
    state = TODO if edit.adds else DONE
    if last is None:
        end = lines.off(call.end_lineno, call.end_col_offset) - 1  # just before ')'
        return Site(edit, line, function, scope, state, None, (end, end), first_arg_col=call.end_col_offset)
    end = lines.off(last.end_lineno, last.end_col_offset)
    return Site(edit, line, function, scope, state, None, (end, end), first_arg_col=first.col_offset)


@dataclass
class Result:
    text: bytes
    changed: List[Site]


def _insertion(src: bytes, site: Site, value: str, lines: _Lines) -> bytes:
    kw = f"{site.edit.keyword}={value}"
    pos = site.span[0]
    line_start = src.rfind(b"\n", 0, pos) + 1
    line_end = src.find(b"\n", pos)
    line_end = len(src) if line_end < 0 else line_end
    one_line = len(src[line_start:line_end]) + len(", ") + len(kw)
    if one_line <= MAX_LINE:
        return f", {kw}".encode()
    nl = "\r\n" if b"\r\n" in src else "\n"
    return f",{nl}{' ' * site.first_arg_col}{kw}".encode()


def apply(src: bytes, edits: Sequence[CallEdit], what: str = "file") -> Result:
    """Make every ``todo`` site ``done``. Raises RuleError when a site is ``unknown``."""
    sites = scan(src, edits, what)
    _refuse_unknown(sites, what)
    lines = _Lines(src)
    todo = [s for s in sites if s.state == TODO]
    tf_alias = _first(tf_aliases(_parse(src, what)))
    out = src
    for s in sorted(todo, key=lambda s: s.span, reverse=True):
        value = s.edit.to.replace("{tf}", tf_alias)
        if s.value is None:
            piece = _insertion(src, s, value, lines)
            out = out[: s.span[0]] + piece + out[s.span[0] :]
        else:
            out = out[: s.span[0]] + value.encode() + out[s.span[1] :]
    return Result(out, todo)


def revert(src: bytes, edits: Sequence[CallEdit], what: str = "file") -> Result:
    """Put every ``done`` site back to the upstream form (the keyword's upstream value, or no keyword
    where the rule added it). Sites that were never the rule's (an absent keyword whose default is right)
    stay as they are. Raises RuleError when a site is ``unknown``."""
    sites = scan(src, edits, what)
    _refuse_unknown(sites, what)
    tf_alias = _first(tf_aliases(_parse(src, what)))
    undo = [s for s in sites if s.state == DONE and s.value is not None]
    out = src
    for s in sorted(undo, key=lambda s: s.span, reverse=True):
        if s.edit.upstream is None:
            if s.kw_span is None:
                raise RuleError(f"{what}: {s.describe()}: cannot remove the only argument")
            out = out[: s.kw_span[0]] + out[s.kw_span[1] :]
        else:
            out = out[: s.span[0]] + s.edit.upstream.replace("{tf}", tf_alias).encode() + out[s.span[1] :]
    return Result(out, undo)


def _refuse_unknown(sites: Sequence[Site], what: str) -> None:
    bad = [s for s in sites if s.state == UNKNOWN]
    if bad:
        s = bad[0]
        raise RuleError(
            f"{what}: {s.describe()}: {s.edit.keyword} is neither {s.edit.upstream or 'absent'} nor "
            f"{s.edit.to.replace('{tf}', 'tf')}; the rule cannot decide this call"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        )
