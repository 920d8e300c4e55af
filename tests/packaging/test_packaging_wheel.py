"""The wheel, as a new user gets it: built from the files git tracks, installed with the `fix` extra into a
fresh virtualenv, every console script run from a directory with no source tree beside it.

Needs PyPI (marker ``network``): the build backend and the dependencies are installed the ordinary way, with
the user's pip cache, so a second run downloads nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List

import deeplab_nnapi
import pytest
from reference_support import REPO_ROOT

pytestmark = pytest.mark.network

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SCRIPTS = sorted(PROJECT["scripts"])
_IGNORED = {".git", ".venv", "venv", "build", "dist", "out", "__pycache__", ".pytest_cache", ".ruff_cache",
            ".hypothesis", "reference"}


def _source_files(root: Path) -> List[str]:
    """The files a clone has: what git tracks (and new files it does not ignore), else a filtered walk."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, check=True).stdout.decode()
        return [f for f in out.split("\0") if f and (root / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p.relative_to(root).as_posix() for p in root.rglob("*")
                if p.is_file() and not _IGNORED & set(p.relative_to(root).parts)
                and not p.name.endswith((".pyc", ".egg-info"))]


def _pip_env(cache: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_CACHE_DIR=cache, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    return env


class Installed:
    def __init__(self, root: Path, wheel: Path, venv: Path, env: Dict[str, str], seconds: Dict[str, float]):
        self.root, self.wheel, self.venv, self.env, self.seconds = root, wheel, venv, env, seconds
        self.bin = venv / "bin"
        self.run_dir = root / "run"  # no source tree anywhere near it
        self.run_dir.mkdir()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=self.run_dir, env=self.env,
                              capture_output=True, text=True, timeout=600)
        if check:
            why = f"{' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            assert proc.returncode == 0, why
        return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory, user_pip_cache) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for rel in _source_files(REPO_ROOT):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, src / rel)
    env = _pip_env(user_pip_cache)
    seconds = {}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
                           str(src)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seconds["build"] = time.monotonic() - t0
    (wheel,) = (root / "dist").glob("deeplab_nnapi-*.whl")
    venv = root / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True, capture_output=True)
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[fix]"],
                          env=env, capture_output=True, text=True, timeout=1200, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seconds["install"] = time.monotonic() - t0
    env = dict(env, PATH=os.pathsep.join([str(venv / "bin"), env.get("PATH", "")]), VIRTUAL_ENV=str(venv))
    env.pop("DEEPLAB_NNAPI_PATCHES", None)
    shutil.rmtree(src)  # nothing of the checkout is left to find
    return Installed(root, wheel, venv, env, seconds)


def test_wheel_carries_the_package_and_the_patch_set(installed):
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())
        here = REPO_ROOT / "tools" / "deeplab_nnapi"
        package = [p.relative_to(here).as_posix() for p in here.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
        missing = [rel for rel in package if f"deeplab_nnapi/{rel}" not in names]
        assert not missing, f"files of tools/deeplab_nnapi/ not in the wheel: {missing}"
        patches = [p for p in (REPO_ROOT / "patches").rglob("*") if p.is_file()]
        assert any(p.name == "manifest.toml" for p in patches) and any(p.suffix == ".patch" for p in patches)
        for p in patches:
            name = "deeplab_nnapi/patches/" + p.relative_to(REPO_ROOT / "patches").as_posix()
            assert name in names, f"{name} not in the wheel"
            assert zf.read(name) == p.read_bytes(), f"{name} differs from the checkout's (sha256 would fail)"
        dist_info = next(n.partition("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    assert f"\nVersion: {deeplab_nnapi.__version__}\n" in metadata
    for script in SCRIPTS:
        assert f"{script} = " in entry_points


def test_wheel_installs_without_a_source_tree(installed):
    code = ("import deeplab_nnapi, deeplab_nnapi.resources as r\n"
            "print(deeplab_nnapi.__file__)\nprint(r.patches_dir())")
    out = installed.run("python", "-c", code).stdout.splitlines()
    assert Path(out[0]).is_relative_to(installed.venv) and "site-packages" in out[0]
    assert Path(out[1]) == Path(out[0]).parent / "patches"


def test_wheel_python_m_lists_the_commands(installed):
    out = installed.run("python", "-m", "deeplab_nnapi").stdout
    assert deeplab_nnapi.__version__ in out
    for script in SCRIPTS:
        assert script in out


@pytest.mark.parametrize("script", SCRIPTS)
def test_wheel_every_console_script_has_version_and_help(installed, script):
    version = installed.run(script, "--version").stdout.strip()
    assert version.endswith(f"(deeplab-nnapi) {deeplab_nnapi.__version__}")
    assert "usage:" in installed.run(script, "--help").stdout


def _snapshot(tree: Path) -> Dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(tree).parts}


def test_wheel_apply_check_reverse(installed):
    import stand_in_trees

    tf = stand_in_trees.tensorflow_tree(installed.root / "trees" / "tensorflow")
    models = stand_in_trees.models_tree(installed.root / "trees" / "models")
    before = {t: _snapshot(t) for t in (tf, models)}
    args = ["deeplab-apply-patches", "--tf-version", "2.x", "--tf-dir", str(tf), "--models-dir", str(models),
            "--json"]

    report = json.loads(installed.run(*args, "--check").stdout)
    assert report["ok"] and {p["state"] for t in report["trees"] for p in t["patches"]} == {"would-apply"}
    assert Path(report["manifest"]).is_relative_to(installed.venv), report["manifest"]
    assert {t: _snapshot(t) for t in (tf, models)} == before

    report = json.loads(installed.run(*args).stdout)
    assert {p["state"] for t in report["trees"] for p in t["patches"]} == {"applied"}
    assert _snapshot(tf) != before[tf] and _snapshot(models) != before[models]

    report = json.loads(installed.run(*args, "--check").stdout)
    assert {p["state"] for t in report["trees"] for p in t["patches"]} == {"already-applied"}

    report = json.loads(installed.run(*args, "--reverse").stdout)
    assert {p["state"] for t in report["trees"] for p in t["patches"]} == {"reversed"}
    assert {t: _snapshot(t) for t in (tf, models)} == before


def test_wheel_check_delegation_and_fix_model(installed, pascal_513_os8, google_model):
    proc = installed.run("deeplab-check-delegation", str(google_model), "--delegate", "stock", "--json")
    assert len(json.loads(proc.stdout)["nodes"]) == 8
    installed.run("deeplab-check-delegation", str(pascal_513_os8), "--expect-single-partition")

    fixed = installed.run_dir / "fixed.tflite"
    report = json.loads(installed.run("deeplab-fix-model", str(google_model), str(fixed), "--json").stdout)
    assert fixed.is_file() and report["agreement"]
    installed.run("deeplab-check-delegation", str(fixed), "--delegate", "stock", "--expect-single-partition")


def test_wheel_export_models_lists_the_variants(installed):
    out = installed.run("deeplab-export-models", "--list-variants").stdout
    assert "deeplabv3_mnv2_pascal_513_os8_quant" in out and "deeplabv3_mnv2_ade20k_513_os16_quant" in out


def test_wheel_timing(installed):
    """Not a check: the build and install times, shown with -s (the install dominates)."""
    s = installed.seconds
    print(f"wheel test: build {s['build']:.1f} s, venv + install {s['install']:.1f} s")
