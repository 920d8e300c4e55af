"""The documentation's shape: markers that mean something, a short README, links that resolve, commands and
options that exist, ``pip install`` lines that name real extras. (Running the blocks: test_docs_blocks.py.)"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from functools import cache
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from docblocks import REPO_ROOT, SHELL_LANGS, Block, blocks_of, doc_files, extras_named, pip_lines
from docsandbox import console_scripts

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

README_MAX_LINES = 200
PAGES = doc_files()
PAGE_IDS = [p.relative_to(REPO_ROOT).as_posix() for p in PAGES]


def _blocks(path: Path) -> List[Block]:
    return blocks_of(path)


def test_docs_markers_are_valid():
    """Every docs-test marker parses and stands right before a shell block (blocks_of raises otherwise)."""
    for path in PAGES:
        _blocks(path)


def test_docs_readme_is_short():
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_docs_every_page_is_linked_from_the_readme():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for page in sorted((REPO_ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


# -- links ------------------------------------------------------------------------------------------------
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, line) outside fenced blocks."""
    fence = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset:
    seen: dict = {}
    out = set()
    for _, line in _prose(path):
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            base = slug(m.group(1))
            k = seen.get(base, 0)
            out.add(base if k == 0 else f"{base}-{k}")
            seen[base] = k + 1
    return frozenset(out)


@pytest.mark.parametrize("page", PAGES + [REPO_ROOT / "CHANGELOG.md"],
                         ids=PAGE_IDS + ["CHANGELOG.md"])
def test_docs_links_resolve(page):
    bad = []
    for n, line in _prose(page):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                bad.append(f"{page.name}:{n}: {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{page.name}:{n}: {target}: no heading with that anchor")
    assert not bad, "\n".join(bad)


def test_docs_slug_is_githubs():
    assert slug("Pictures: `--overlays`") == "pictures---overlays"
    assert slug("JSON (`--json`)") == "json---json"
    assert slug("I want to ...") == "i-want-to-"


# -- commands and options named by the docs ----------------------------------------------------------------
def _logical_lines(block: Block) -> List[str]:
    """Lines with continuations joined: a trailing backslash, and (in synopses) indented lines."""
    out: List[str] = []
    cont = False
    for raw in block.text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw)  # comments
        if (cont or (block.lang not in SHELL_LANGS and raw[:1].isspace())) and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line.strip())
        cont = out[-1].endswith("\\")
        if cont:
            out[-1] = out[-1][:-1]
    return [line for line in out if line]


def _commands(line: str) -> Iterator[Tuple[str, List[str]]]:
    """(tool module or script, its options) for every command of ours on a logical line."""
    tokens = line.split()
    scripts = console_scripts()
    i = 0
    while i < len(tokens):
        tok, module = tokens[i], None
        if tok in scripts or (tok.startswith("deeplab-") and re.match(r"^deeplab-[a-z-]+$", tok)):
            module = tok
        elif tok in ("python", "python3") and re.match(r"^tools/\w+\.py$", "".join(tokens[i + 1:i + 2])):
            module, i = tokens[i + 1], i + 1
        i += 1
        if module is None:
            continue
        opts = []
        while i < len(tokens) and tokens[i] not in ("|", "&&", "||", ";", ">", "2>"):
            m = re.match(r"^\[?(--[a-z][a-z0-9-]*)", tokens[i])
            if m:
                opts.append(m.group(1))
            i += 1
        yield module, opts


def _module_of(name: str) -> Optional[str]:
    scripts = console_scripts()
    if name in scripts:
        return scripts[name].partition(":")[0]
    m = re.match(r"^tools/(\w+)\.py$", name)
    if m and (REPO_ROOT / name).is_file():
        return f"deeplab_nnapi.cli.{m.group(1)}"
    return None


@cache
def _help(module: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        importlib.import_module(module).main(["--help"])
    return out.getvalue()


def _documented_commands():
    for path in PAGES:
        for block in _blocks(path):
            if block.planned or block.lang not in SHELL_LANGS + ("text", ""):
                continue
            for line in _logical_lines(block):
                for name, opts in _commands(line):
                    yield block, name, opts


def test_docs_commands_exist():
    unknown = [f"{b.id}: {name}" for b, name, _ in _documented_commands() if _module_of(name) is None]
    assert not unknown, "commands the docs name that the checkout does not have:\n" + "\n".join(unknown)


def test_docs_options_exist():
    bad = []
    for block, name, opts in _documented_commands():
        module = _module_of(name)
        if module is None:
            continue
        have = set(re.findall(r"--[a-z][a-z0-9-]*", _help(module)))
        bad += [f"{block.id}: {name} {opt}" for opt in opts if opt not in have]
    assert not bad, "options the docs give that the tools do not have:\n" + "\n".join(bad)


def test_docs_pip_lines_name_real_extras():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = set(project["optional-dependencies"])
    bad = []
    for path in PAGES:
        for block in _blocks(path):
            if block.lang in SHELL_LANGS:
                for _, line in pip_lines(block.text):
                    bad += [f"{block.id}: [{e}]" for e in extras_named(line) if e not in extras]
    assert not bad, f"extras not in pyproject.toml ({', '.join(sorted(extras))}):\n" + "\n".join(bad)
