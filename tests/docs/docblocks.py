"""The shell blocks of README.md and docs/*.md, and what their ``docs-test`` markers ask for.

A fenced block whose info string is ``sh``, ``bash`` or ``shell`` is a shell block; the docs tests run every
one of them (see docs/testing.md, "Docs tests"). The last non-blank line before a block may be a marker::

    <!-- docs-test: needs network -->
    <!-- docs-test: needs export; timeout 300 -->
    <!-- docs-test: exit 1 -->
    <!-- docs-test: skip rewrites the committed pictures -->

Directives, separated by ``;``:

* ``needs NAME[, NAME...]``: what the block needs besides the fixtures (:data:`NEEDS`). Outside needs
  (``network``, ``docker``, ``device``, ``source-tree``) are never there in the tests: the block is skipped
  with the reason. An extra (``export``, ``fix``, ``pictures``, ``images``, ``container``) is there when its
  modules import; without them the block is skipped.
* ``skip REASON``: skipped with that reason (say why in words).
* ``exit N``: the block must exit with N (default 0).
* ``timeout SECONDS``: the block's time limit (default :data:`DEFAULT_TIMEOUT`).
* ``planned``: the block shows a command that does not exist yet (a placeholder page); the checks that
  commands and options exist leave it alone. Use it with a need or a skip, and remove it when the tool lands.

Blocks in other languages (``text`` for usage synopses and sample output, ``python``, ``jsonc``, ``toml``)
are not run.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGS = ("sh", "bash", "shell")
DEFAULT_TIMEOUT = 180
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)[^\n]*$")


def _modules(*names: str) -> Callable[[], Optional[str]]:
    def check() -> Optional[str]:
        missing = [n for n in names if importlib.util.find_spec(n) is None]
        return f"not installed: {', '.join(missing)}" if missing else None

    return check


def _never(reason: str) -> Callable[[], Optional[str]]:
    return lambda: reason


#: block id -> "ran" or why it was skipped; filled by test_docs_blocks.py, counted at the end (conftest.py)
OUTCOMES: Dict[str, str] = {}

#: need -> check: None when the need is met here, else why not (the skip reason).
NEEDS: Dict[str, Callable[[], Optional[str]]] = {
    "network": _never("downloads from the internet (PyPI, GitHub, download.tensorflow.org)"),
    "docker": _never("a container engine (Docker, Podman or buildah) and an image build (docs/container.md)"),
    "device": _never("an Android phone on adb"),
    "source-tree": _never("a real TensorFlow, LiteRT or tensorflow/models checkout (the tests' stand-in "
                          "trees hold only the files the patches touch)"),
    "export": _modules("tensorflow", "tf_slim", "tf_keras", "ai_edge_litert"),
    "fix": _modules("ai_edge_litert", "PIL", "skimage"),
    "images": _modules("PIL", "skimage"),
    "pictures": _modules("matplotlib"),
    "container": _modules("docker"),
}


@dataclass
class Block:
    path: Path  # the Markdown file
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    needs: List[str] = field(default_factory=list)
    skip: Optional[str] = None
    exit: int = 0
    timeout: int = DEFAULT_TIMEOUT
    planned: bool = False
    marker_line: Optional[int] = None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT).as_posix()}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL_LANGS

    def skip_reason(self) -> Optional[str]:
        """Why this block does not run here (None: it runs)."""
        if self.skip:
            return f"skip: {self.skip}"
        for need in self.needs:
            why = NEEDS[need]()
            if why:
                return f"needs {need}: {why}"
        return None


class MarkerError(ValueError):
    pass


def parse_marker(text: str, where: str) -> Dict[str, object]:
    """``needs a, b; exit 1`` -> {"needs": [...], "exit": 1, ...}; unknown directives or needs raise."""
    out: Dict[str, object] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        word, _, rest = part.partition(" ")
        rest = rest.strip()
        if word == "needs":
            names = [n.strip() for n in rest.split(",") if n.strip()]
            unknown = [n for n in names if n not in NEEDS]
            if not names or unknown:
                raise MarkerError(f"{where}: needs {rest!r}: known needs are {', '.join(NEEDS)}")
            out.setdefault("needs", []).extend(names)  # type: ignore[union-attr]
        elif word == "skip":
            if not rest:
                raise MarkerError(f"{where}: skip needs a reason")
            out["skip"] = rest
        elif word == "planned" and not rest:
            out["planned"] = True
        elif word in ("exit", "timeout"):
            if not rest.isdigit():
                raise MarkerError(f"{where}: {word} needs a whole number, not {rest!r}")
            out[word] = int(rest)
        else:
            raise MarkerError(f"{where}: unknown directive {part!r} (needs, skip, exit, timeout, planned)")
    return out


def blocks_of(path: Path) -> List[Block]:
    """Every fenced block of a Markdown file, shell blocks with their marker applied. A marker that is not
    directly (blank lines aside) before a shell block raises :class:`MarkerError`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(REPO_ROOT).as_posix()
    out: List[Block] = []
    pending: Optional[Tuple[int, str]] = None  # (line, marker text)
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            if pending:
                raise MarkerError(f"{rel}:{pending[0]}: marker not followed by a shell block")
            pending = (i + 1, m.group(1))
            i += 1
            continue
        f = _FENCE.match(line)
        if f:
            indent, fence, lang = f.group(1), f.group(2), f.group(3).lower()
            body: List[str] = []
            j = i + 1
            while j < len(lines) and not (lines[j].strip().startswith(fence) and
                                          lines[j].strip().strip(fence[0]) == ""):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            block = Block(path, i + 1, lang, "\n".join(body) + "\n")
            if pending:
                if not block.is_shell:
                    raise MarkerError(f"{rel}:{pending[0]}: marker before a {lang or 'plain'} block, "
                                      "not a shell block")
                opts = parse_marker(pending[1], f"{rel}:{pending[0]}")
                block.needs = list(opts.get("needs", []))  # type: ignore[arg-type]
                block.skip = opts.get("skip")  # type: ignore[assignment]
                block.exit = int(opts.get("exit", 0))  # type: ignore[arg-type]
                block.timeout = int(opts.get("timeout", DEFAULT_TIMEOUT))  # type: ignore[arg-type]
                block.planned = bool(opts.get("planned"))
                if block.planned and not (block.needs or block.skip):
                    raise MarkerError(f"{rel}:{pending[0]}: 'planned' needs a need or a skip: the block "
                                      "cannot run before the tool exists")
                block.marker_line = pending[0]
                pending = None
            out.append(block)
            i = j + 1
            continue
        if pending and line.strip():
            raise MarkerError(f"{rel}:{pending[0]}: marker not followed by a shell block")
        i += 1
    if pending:
        raise MarkerError(f"{rel}:{pending[0]}: marker not followed by a shell block")
    return out


def doc_files() -> List[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def shell_blocks() -> List[Block]:
    return [b for p in doc_files() for b in blocks_of(p) if b.is_shell]


# -- what a block runs -----------------------------------------------------------------------------------
_PIP = re.compile(r"^\s*(?:python3? -m )?pip install\b(.*)$")
_EXTRAS = re.compile(r"""(?:\.|deeplab-nnapi|deeplab_nnapi[^\s'"]*\.whl)\[([\w,-]+)\]""")


def pip_lines(text: str) -> List[Tuple[int, str]]:
    """(index, line) of every ``pip install`` line of a block."""
    return [(k, line) for k, line in enumerate(text.splitlines()) if _PIP.match(line)]


def extras_named(line: str) -> List[str]:
    """The extras a ``pip install`` line names (``'.[fix,pictures]'`` -> fix, pictures)."""
    return [e for m in _EXTRAS.finditer(line) for e in m.group(1).split(",") if e]


def runnable_text(text: str) -> str:
    """The block as the test runs it: ``pip install`` lines become no-ops (the test environment has every
    extra installed; the test checks the extras they name exist instead)."""
    lines = text.splitlines()
    for k, line in pip_lines(text):
        lines[k] = ": " + line.strip().replace("'", "").replace('"', "")
    return "\n".join(lines) + "\n"
