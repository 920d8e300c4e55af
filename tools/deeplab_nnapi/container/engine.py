"""Drive the image build (docker/Dockerfile) through a Docker-compatible engine with the docker SDK, or choose
buildah when none answers.

* :func:`choose_engine` picks the engine: a Docker-compatible one when it answers, else buildah
  (:mod:`deeplab_nnapi.container.buildah`) when it is installed, else one line saying how to get either;
* :func:`resolve_engine` finds the engine's URL (``--engine-url``, ``DOCKER_HOST``, the default Docker
  socket, Podman's sockets) and fails with one line when there is none;
* :func:`connect` opens a client and pings it;
* :func:`build` runs the build (target and build-args), streaming the engine's progress lines;
* :func:`export_artifacts` copies the ``artifacts`` stage's files out of the image (the docker SDK's
  equivalent of ``docker build --output type=local,dest=DIR``): a container is created (never started),
  every artifact path is read with ``get_archive``, unpacked safely into a temporary directory beside
  ``DIR`` and moved into place only when complete.

The engine's API is the classic one (no BuildKit session), which Docker Engine and Podman's compatible
service both serve.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from deeplab_nnapi.errors import CheckFailed, UsageError

#: Where an engine's API socket usually is, in the order they are tried when nothing is configured.
DEFAULT_SOCKETS = (
    "/var/run/docker.sock",
    "{XDG_RUNTIME_DIR}/podman/podman.sock",
    "/run/podman/podman.sock",
)

#: What the ``artifacts`` stage holds (docker/Dockerfile), copied out by ``--output``.
ARTIFACT_PATHS = ("/android_arm64", "/host", "/models", "/report")
#: The targets ``--output`` copies out, and what each holds: ``proof`` is everything but benchmark_model
#: (no Android toolchain, no Bazel).
OUTPUT_PATHS = {"artifacts": ARTIFACT_PATHS, "proof": ("/host", "/models", "/report")}
ENGINES = ("auto", "docker", "buildah")
#: How to get an engine, for the one line printed when there is none.
GET_ENGINE = ("install Docker (https://docs.docker.com/engine/install/debian/) or buildah "
              "(apt-get install buildah)")

DEFAULT_DOCKERFILE = "docker/Dockerfile"
DEFAULT_TARGET = "artifacts"


class EngineUnavailable(UsageError):
    """No container engine is reachable (exit 2)."""


class BuildFailed(CheckFailed):
    """The engine reported an error while building (exit 1)."""


@dataclass
class BuildResult:
    image_id: str
    tag: Optional[str]
    target: str
    log: List[str] = field(default_factory=list)
    files: List[Path] = field(default_factory=list)  # copied out with --output


def _socket_path(url: str) -> Optional[str]:
    for prefix in ("unix://", "npipe://"):
        if url.startswith(prefix):
            return url[len(prefix):]
    return None


def resolve_engine(engine_url: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> str:
    """The engine URL to use; :class:`EngineUnavailable` when no socket can be found."""
    env = os.environ if env is None else env
    url = engine_url or env.get("DOCKER_HOST") or ""
    if url:
        where = "--engine-url" if engine_url else "DOCKER_HOST"
        path = _socket_path(url)
        if path is not None and not os.path.exists(path):
            raise EngineUnavailable(f"no container engine reachable: {where} is {url} "
                                    f"but {path} does not exist")
        return url
    runtime = env.get("XDG_RUNTIME_DIR") or (f"/run/user/{os.getuid()}" if hasattr(os, "getuid") else "")
    tried = []
    for pattern in DEFAULT_SOCKETS:
        path = pattern.format(XDG_RUNTIME_DIR=runtime)
        if os.path.exists(path):
            return f"unix://{path}"
        tried.append(path)
    raise EngineUnavailable("no container engine reachable: DOCKER_HOST is not set and none of "
                            f"{', '.join(tried)} exists (start Docker, or Podman's API service, or pass "
                            "--engine-url)")


def connect(engine_url: Optional[str] = None, *, timeout: int = 600, client_factory=None):
    """A docker SDK client for the engine, pinged; :class:`EngineUnavailable` when it does not answer."""
    url = resolve_engine(engine_url)
    if client_factory is None:
        try:
            import docker
        except ImportError:
            docker = None
        # (run from the repository root, this repository's own docker/ directory can shadow the SDK)
        client_factory = getattr(docker, "DockerClient", None)
        if client_factory is None:
            raise UsageError("the docker SDK is not installed: pip install 'deeplab-nnapi[container]'")
    try:
        client = client_factory(base_url=url, timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises requests/urllib3/docker errors alike
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EngineUnavailable(f"no container engine answering at {url}: {reason}") from None
    return client


@dataclass
class Engine:
    """The engine a build runs on: ``kind`` "docker" (``client``: a docker SDK client) or "buildah"
    (``exe``: the buildah executable); ``why`` says how it was chosen."""

    kind: str
    client: object = None
    exe: Optional[str] = None
    why: str = ""


def choose_engine(requested: str = "auto", engine_url: Optional[str] = None, *, connect_fn=None,
                  find_buildah_fn=None, env: Optional[Dict[str, str]] = None) -> Engine:
    """``docker``: the Docker-compatible engine (one-line EngineUnavailable when it does not answer);
    ``buildah``: buildah (EngineUnavailable when it is not installed); ``auto``: the former when it answers,
    else buildah when installed, else one line naming both ways to get an engine. An engine named by
    ``engine_url`` or ``DOCKER_HOST`` must answer: no fallback then (the user asked for that one)."""
    from deeplab_nnapi.container.buildah import find_buildah

    env = os.environ if env is None else env
    named = engine_url or env.get("DOCKER_HOST")
    connect_fn = connect_fn or connect
    find_buildah_fn = find_buildah_fn or find_buildah
    if requested not in ENGINES:
        raise UsageError(f"--engine {requested!r}: expected one of {', '.join(ENGINES)}")
    if requested == "buildah":
        exe = find_buildah_fn()
        if not exe:
            raise EngineUnavailable("buildah not found (apt-get install buildah)")
        return Engine("buildah", exe=exe, why="--engine buildah")
    try:
        return Engine("docker", client=connect_fn(engine_url), why=engine_url or "Docker-compatible engine")
    except UsageError as exc:  # no socket, no answer, or no docker SDK
        if requested == "docker" or named:
            raise
        exe = find_buildah_fn()
        if exe:
            return Engine("buildah", exe=exe, why=f"buildah ({exc})")
        reason = str(exc).removeprefix("no container engine reachable: ")
        raise EngineUnavailable(f"no container engine: no Docker-compatible engine answers ({reason}) and "
                                f"buildah is not installed: {GET_ENGINE}") from None


def replace_dir(staging: Path, output: Path) -> List[Path]:
    """Move ``staging`` to ``output`` (replacing it only now that everything is there); the files moved."""
    files = sorted(p.relative_to(staging) for p in Path(staging).rglob("*") if p.is_file())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it 0700; the output is an ordinary directory
    if output.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{output.name}.old.", dir=output.parent))
        os.replace(output, backup / output.name)
        os.replace(staging, output)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, output)
    return [output / f for f in files]


def parse_build_args(pairs: Iterable[str]) -> Dict[str, str]:
    """``["K=V", ...]`` to a dict; a malformed pair is a :class:`UsageError`."""
    out: Dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise UsageError(f"--build-arg {pair!r}: expected NAME=VALUE")
        out[key] = value
    return out


def _event_text(event: dict) -> Optional[str]:
    """One printable progress line from an engine build event, or None."""
    if "stream" in event:
        text = str(event["stream"]).rstrip("\n")
        return text or None
    if "status" in event:
        parts = [str(event.get("id") or ""), str(event["status"]), str(event.get("progress") or "")]
        return " ".join(p for p in parts if p) or None
    return None


def build(client, context: Path, *, dockerfile: str = DEFAULT_DOCKERFILE, target: str = DEFAULT_TARGET,
          build_args: Optional[Dict[str, str]] = None, tag: Optional[str] = None,
          on_line: Callable[[str], None] = lambda line: None, pull: bool = False) -> BuildResult:
    """Build ``target`` of ``dockerfile`` in ``context``; stream progress lines to ``on_line``."""
    context = Path(context)
    if not (context / dockerfile).is_file():
        raise UsageError(f"no Dockerfile at {context / dockerfile}")
    stream: Iterator[dict] = client.api.build(
        path=str(context), dockerfile=dockerfile, target=target, buildargs=dict(build_args or {}), tag=tag,
        rm=True, forcerm=True, pull=pull, decode=True)
    result = BuildResult(image_id="", tag=tag, target=target)
    for event in stream:
        if "error" in event or "errorDetail" in event:
            detail = event.get("errorDetail") or {}
            message = str(event.get("error") or detail.get("message") or "build failed").strip()
            last = message.splitlines()[-1] if message else ""
            ours = [ln for ln in result.log[-200:] if ": error: " in ln]
            why = f"{last} ({ours[-1].strip()})" if ours and ours[-1].strip() not in last else last
            raise BuildFailed(f"build of target {target!r} failed: {why}")
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            result.image_id = str(aux["ID"])
        text = _event_text(event)
        if text is not None:
            result.log.append(text)
            on_line(text)
            if text.startswith("Successfully built ") and not result.image_id:
                result.image_id = text.split()[-1]
    if not result.image_id:
        raise BuildFailed(f"build of target {target!r} ended without an image")
    return result


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    target = (dest / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not str(target).startswith(str(dest.resolve())):
        raise BuildFailed(f"artifact archive has an unsafe path: {name}")
    if member.issym() or member.islnk():
        link = Path(member.linkname)
        resolved = (target.parent / link).resolve() if member.issym() else (dest / link).resolve()
        if link.is_absolute() or not str(resolved).startswith(str(dest.resolve())):
            raise BuildFailed(f"artifact archive has a link leaving the output: {name} -> {member.linkname}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise BuildFailed(f"artifact archive has a special file: {name}")


def _extract(chunks: Iterable[bytes], dest: Path) -> List[str]:
    """Unpack an engine's tar stream into ``dest``: regular files, directories and inner links only."""
    names = []
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r|") as tar:
        for member in tar:
            _check_member(member, dest)
            member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12: the stdlib's own safety net too
                tar.extract(member, dest, filter="data")
            else:
                tar.extract(member, dest, set_attrs=False)
                if member.isfile():
                    os.chmod(dest / member.name, member.mode)
            names.append(member.name)
    return names


def export_artifacts(client, image: str, output: Path, paths: Sequence[str] = ARTIFACT_PATHS,
                     on_line: Callable[[str], None] = lambda line: None) -> List[Path]:
    """Copy ``paths`` of ``image`` into ``output`` (created or replaced only when all were copied)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    container = client.api.create_container(image=image, command=["/nonexistent"])
    cid = container["Id"] if isinstance(container, dict) else str(container)
    try:
        for path in paths:
            on_line(f"copying {path} out of {image}")
            try:
                chunks, _stat = client.api.get_archive(cid, path)
            except Exception as exc:
                raise BuildFailed(f"image {image} has no {path}: {str(exc).splitlines()[0]}") from None
            _extract(chunks, staging)
        return replace_dir(staging, output)
    finally:
        try:
            client.api.remove_container(cid, force=True)
        except Exception:
            pass
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
