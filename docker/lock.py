"""Regenerate docker/requirements-*.txt: exact versions and sha256 of every wheel, from PyPI's metadata.

    python docker/lock.py [check|export|probe ...]      # default: all

Uses `pip install --dry-run --report` for the target interpreter and platform (no wheel is installed and,
with PEP 658 metadata, none is downloaded). The input requirements are the table below; `check`, `export`
and `probe` follow pyproject.toml's core dependencies plus the extra. Run it when pyproject.toml changes,
then rebuild the image.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
PROJECT = tomllib.loads((HERE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CORE = [r for r in PROJECT["dependencies"] if "python_version <" not in r]

PY311 = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3",
         "--abi", "none"] + [f"--platform={p}" for p in (
             "manylinux_2_36_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64",
             "linux_x86_64")]
# The export stage installs the CPU-only build of TensorFlow: distribution -> the one that provides it in
# the image (same version, same `tensorflow` package, no GPU kernels: half the download). Packages that
# require the replaced distribution by name (tf-keras requires `tensorflow`) are locked without their
# dependencies, pinned to the replacement's version; the stage installs the package itself with --no-deps.
PROVIDED_BY = {"export": {"tensorflow": "tensorflow-cpu"}}
NEEDS_REPLACED = {"export": ["tf-keras"]}

BACKEND = ["setuptools>=68", "wheel"]  # the build backend, for `pip install --no-build-isolation -e .`
LOCKS = {
    "check": (PY311, CORE + PROJECT["optional-dependencies"]["test"] + BACKEND),
    "export": (PY311, CORE + PROJECT["optional-dependencies"]["export"] + BACKEND),
    "probe": (PY311, CORE + PROJECT["optional-dependencies"]["probe"] + BACKEND),
}


def substitute(name, reqs):
    """The lock's requirements: replaced distributions renamed, their dependents set aside (no deps)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    provided = PROVIDED_BY.get(name, {})
    aside = {canonicalize_name(n) for n in NEEDS_REPLACED.get(name, [])}
    with_deps, without_deps = [], []
    for spec in reqs:
        req = Requirement(spec)
        if canonicalize_name(req.name) in aside:
            without_deps.append(req)
            continue
        if req.name in provided:
            req.name = provided[req.name]
        with_deps.append(str(req))
    return with_deps, without_deps


def resolve(platform, reqs, no_deps):
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
               "--only-binary=:all:", "--target", str(Path(tmp) / "t"), "--report", str(report), *platform]
        cmd += ["--no-deps"] if no_deps else []
        # A machine-wide constraints file must not leak into the lock.
        env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
        subprocess.run(cmd + list(reqs), check=True, env={**env, "PIP_CONSTRAINT": ""})
        return json.loads(report.read_text())["install"]


def lock(name):
    platform, reqs = LOCKS[name]
    with_deps, aside = substitute(name, reqs)
    items = resolve(platform, with_deps, False)
    from packaging.utils import canonicalize_name

    resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
    without_deps = []
    for req in aside:  # e.g. tf-keras: the release of the replacement's (tensorflow-cpu's) minor version
        replacement = canonicalize_name(next(iter(PROVIDED_BY[name].values())))
        major_minor = ".".join(resolved[replacement].split(".")[:2])
        without_deps.append(f"{req.name}=={major_minor}.*")
    items += resolve(platform, without_deps, True) if without_deps else []
    pins = {i["metadata"]["name"].lower(): (i["metadata"]["name"], i["metadata"]["version"],
                                            i["download_info"]["archive_info"]["hashes"]["sha256"])
            for i in items}
    path = HERE / f"requirements-{name}.txt"
    header = [line for line in path.read_text().splitlines() if line.startswith("#")] if path.exists() else []
    body = [f"{n}=={v} \\\n    --hash=sha256:{h}" for _, (n, v, h) in sorted(pins.items())]
    path.write_text("\n".join(header + body) + "\n")
    print(f"lock: {path.name}: {len(body)} packages")


if __name__ == "__main__":
    for which in sys.argv[1:] or list(LOCKS):
        lock(which)
