"""Regenerate docker/requirements-*.txt: exact versions and sha256 of every wheel, from PyPI's metadata.

    python docker/lock.py [check|export|tf1|uv ...]      # default: all

Uses `pip install --dry-run --report` for the target interpreter and platform (no wheel is installed and,
with PEP 658 metadata, none is downloaded). The input requirements are the table below; `check` and
`export` follow pyproject.toml's core dependencies plus the extra. Run it when pyproject.toml changes, then
rebuild the image.
"""

from __future__ import annotations

import hashlib
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
PY37 = ["--python-version", "3.7", "--implementation", "cp", "--abi", "cp37m", "--abi", "abi3",
        "--abi", "none"] + [f"--platform={p}" for p in (
            "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
            "linux_x86_64")]
# TF 1.15.5's own requirements (its wheel metadata), minus gast==0.2.2 which only exists as an sdist.
TF1_DEPS = ["absl-py>=0.7.0", "astor>=0.6.0", "google-pasta>=0.1.6", "keras-applications>=1.0.8",
            "keras-preprocessing>=1.0.5", "numpy==1.18.5", "opt-einsum>=2.3.2", "six>=1.10.0",
            "protobuf==3.20.3", "tensorboard>=1.15.0,<1.16.0", "tensorflow-estimator==1.15.1",
            "termcolor>=1.1.0", "wrapt>=1.11.1", "grpcio>=1.8.6", "wheel>=0.26", "h5py==2.10.0",
            "tf-slim==1.1.0", "Pillow==9.5.0",
            # environment markers are evaluated for the running interpreter, so name 3.7's backports:
            "importlib-metadata==6.7.0", "zipp==3.15.0", "typing-extensions==4.7.1"]
SDISTS = {"gast": "0.2.2"}

BACKEND = ["setuptools>=68", "wheel"]  # the build backend, for `pip install --no-build-isolation -e .`
LOCKS = {
    "check": (PY311, CORE + PROJECT["optional-dependencies"]["test"] + BACKEND, [], {}),
    "export": (PY311, CORE + PROJECT["optional-dependencies"]["export"] + BACKEND, [], {}),
    "tf1": (PY37, TF1_DEPS, ["tensorflow==1.15.5"], SDISTS),
    "uv": (PY311, [], ["uv==0.6.14"], {}),
}


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


def sdist_hash(name, version):
    """sha256 of a source distribution, fetched with pip itself (the index's own hash is checked by pip)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                        ":all:", "-d", tmp, f"{name}=={version}"], check=True)
        (archive,) = Path(tmp).iterdir()
        return hashlib.sha256(archive.read_bytes()).hexdigest()


def lock(name):
    platform, with_deps, without_deps, sdists = LOCKS[name]
    items = (resolve(platform, with_deps, False) if with_deps else []) + \
        (resolve(platform, without_deps, True) if without_deps else [])
    pins = {i["metadata"]["name"].lower(): (i["metadata"]["name"], i["metadata"]["version"],
                                            i["download_info"]["archive_info"]["hashes"]["sha256"])
            for i in items}
    for sname, version in sdists.items():
        pins[sname] = (sname, version, sdist_hash(sname, version))
    path = HERE / f"requirements-{name}.txt"
    header = [line for line in path.read_text().splitlines() if line.startswith("#")] if path.exists() else []
    body = [f"{n}=={v} \\\n    --hash=sha256:{h}" for _, (n, v, h) in sorted(pins.items())]
    path.write_text("\n".join(header + body) + "\n")
    print(f"lock: {path.name}: {len(body)} packages")


if __name__ == "__main__":
    for which in sys.argv[1:] or list(LOCKS):
        lock(which)
