"""Build docker/Dockerfile with buildah: no daemon, no socket (what CI here does, and the fallback of
``tools/build_image.py`` when no Docker-compatible engine answers).

Public API::

    from deeplab_nnapi.container.buildah import find_buildah, build
    exe = find_buildah()                     # path, or None
    result = build(exe, context, target="proof", build_args={...}, tag="deeplab-nnapi:proof",
                   output=Path("out"), on_line=print)     # BuildResult; out/ replaced only when complete

``buildah bud --format docker --layers=false --pull=false`` (pull a base image only when it is not in the
store; ``pull=True`` asks for ``--pull=always``). ``$STORAGE_DRIVER`` becomes ``--storage-driver`` (buildah
itself does not read it; ``ci/`` sets vfs, which works without overlayfs), ``$BUILDAH_ISOLATION`` is read by
buildah; when it is unset we pass ``--isolation chroot``, which works in a VM, on bare metal and inside a
container alike. ``output`` uses buildah's ``--output type=local`` into a staging
directory beside it, moved into place only when the build succeeded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from deeplab_nnapi.container.engine import BuildFailed, BuildResult, replace_dir
from deeplab_nnapi.errors import UsageError

ERROR_PREFIXES = ("error building at STEP", "Error: ", "error: ")


def find_buildah(env: Optional[Dict[str, str]] = None) -> Optional[str]:
    env = os.environ if env is None else env
    return shutil.which("buildah", path=env.get("PATH"))


def command(exe: str, context: Path, *, dockerfile: str, target: str, build_args: Dict[str, str],
            tag: Optional[str], pull: bool, output: Optional[Path],
            env: Optional[Dict[str, str]] = None) -> List[str]:
    env = os.environ if env is None else env
    cmd = [exe] + (["--storage-driver", env["STORAGE_DRIVER"]] if env.get("STORAGE_DRIVER") else [])
    cmd += ["bud", "--format", "docker", "--layers=false", f"--pull={'always' if pull else 'false'}"]
    if not env.get("BUILDAH_ISOLATION"):
        cmd += ["--isolation", "chroot"]
    cmd += ["--target", target, "-f", str(Path(context) / dockerfile)]
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if tag:
        cmd += ["-t", tag]
    if output is not None:
        cmd += ["--output", f"type=local,dest={output}"]
    return cmd + [str(context)]


def _failure(lines: Sequence[str], code: int) -> str:
    """The line that says what failed: our tools' one-line error if the build printed one, else buildah's."""
    ours = [ln for ln in lines if ": error: " in ln and not ln.startswith(ERROR_PREFIXES)]
    if ours:
        return ours[-1].strip()
    theirs = [ln for ln in lines if ln.startswith(ERROR_PREFIXES)]
    if theirs:
        return theirs[-1].strip()
    rest = [ln for ln in lines if ln.strip()]
    return rest[-1].strip() if rest else f"buildah exited with status {code}"


def build(exe: str, context: Path, *, dockerfile: str, target: str,
          build_args: Optional[Dict[str, str]] = None, tag: Optional[str] = None,
          output: Optional[Path] = None, pull: bool = False,
          on_line: Callable[[str], None] = lambda line: None, runner=subprocess.Popen) -> BuildResult:
    """Run ``buildah bud``; stream its lines to ``on_line``; with ``output``, replace that directory with the
    target's files when (and only when) the build succeeded."""
    context = Path(context)
    if not (context / dockerfile).is_file():
        raise UsageError(f"no Dockerfile at {context / dockerfile}")
    staging = None
    if output is not None:
        output = Path(output).absolute()
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    cmd = command(exe, context, dockerfile=dockerfile, target=target, build_args=dict(build_args or {}),
                  tag=tag, pull=pull, output=staging)
    result = BuildResult(image_id="", tag=tag, target=target)
    try:
        proc = runner(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        last_id = ""
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            result.log.append(line)
            on_line(line)
            if len(line) == 64 and all(c in "0123456789abcdef" for c in line):
                last_id = line  # buildah prints the image id last
        code = proc.wait()
        if code != 0:
            raise BuildFailed(f"build of target {target!r} failed: {_failure(result.log[-200:], code)}")
        result.image_id = last_id or (tag or "")
        if staging is not None:
            result.files = replace_dir(staging, output)
            staging = None
        return result
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
