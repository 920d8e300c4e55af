"""One version and one list of commands: pyproject.toml, ``python -m deeplab_nnapi``, every tool's
``--version``, CHANGELOG.md."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import subprocess
import sys

import deeplab_nnapi
import pytest
from deeplab_nnapi.cli import COMMANDS
from docblocks import REPO_ROOT
from docsandbox import console_scripts

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

MODULES = [module for _, module, _ in COMMANDS]


def test_docs_command_table_matches_pyproject_scripts():
    scripts = console_scripts()
    table = {script: f"deeplab_nnapi.cli.{module}:main" for script, module, _ in COMMANDS if script}
    assert table == scripts


@pytest.mark.parametrize("module", MODULES)
def test_docs_every_command_has_a_wrapper_in_tools(module):
    text = (REPO_ROOT / "tools" / f"{module}.py").read_text(encoding="utf-8")
    assert f"from deeplab_nnapi.cli.{module} import main" in text


@pytest.mark.parametrize("module", MODULES)
def test_docs_every_tool_has_version(module):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        importlib.import_module(f"deeplab_nnapi.cli.{module}").main(["--version"])
    assert exc.value.code == 0
    assert out.getvalue().strip().endswith(f"(deeplab-nnapi) {deeplab_nnapi.__version__}")


def test_docs_version_has_one_source_and_a_changelog_entry():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "deeplab_nnapi.__version__"}
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\S+)", changelog, re.M)
    assert newest and newest.group(1) == deeplab_nnapi.__version__, "CHANGELOG.md's newest entry"


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "tools"))
    return subprocess.run([sys.executable, "-m", "deeplab_nnapi", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT)


def test_docs_python_m_lists_every_command():
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    assert deeplab_nnapi.__version__ in proc.stdout
    for script, module, _ in COMMANDS:
        assert (script or module.replace("_", "-")) in proc.stdout


def test_docs_python_m_runs_a_command():
    proc = _run("check-delegation", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"check_delegation (deeplab-nnapi) {deeplab_nnapi.__version__}"
    proc = _run("no-such-command")
    assert proc.returncode == 2 and "unknown command" in proc.stderr
