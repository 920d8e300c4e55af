"""A fake docker SDK client for the container tests (no engine needed)."""

from __future__ import annotations

import io
import tarfile
from typing import Dict, List, Optional


def tar_of(files: Dict[str, bytes], links: Optional[Dict[str, str]] = None) -> bytes:
    """A tar stream like the engine's get_archive: ``{"models/a.tflite": b"..."}``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o755 if path.endswith("_model") else 0o644
            tar.addfile(info, io.BytesIO(data))
        for path, target in (links or {}).items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


class FakeAPI:
    """The part of docker.APIClient that container.py uses, recording its calls."""

    def __init__(self, events: List[dict], archives: Dict[str, bytes]):
        self.events = events
        self.archives = archives
        self.build_kwargs: dict = {}
        self.created: List[str] = []
        self.removed: List[str] = []

    def build(self, **kwargs):
        self.build_kwargs = kwargs
        yield from self.events

    def create_container(self, image, command=None):
        cid = f"cid-{len(self.created)}"
        self.created.append(image)
        return {"Id": cid}

    def get_archive(self, container, path):
        if path not in self.archives:
            raise RuntimeError(f"404 Client Error: Could not find the file {path} in container {container}")
        data = self.archives[path]
        return iter([data[:7], data[7:]]), {"name": path.strip("/")}

    def remove_container(self, container, force=False):
        self.removed.append(container)


class FakeClient:
    def __init__(self, events=None, archives=None):
        self.api = FakeAPI(events or [], archives or {})
        self.pinged = 0

    def ping(self):
        self.pinged += 1
        return True


GOOD_EVENTS = [
    {"stream": "Step 1/3 : FROM scratch\n"},
    {"stream": " ---> Running in 1234\n"},
    {"status": "Downloading", "id": "layer1", "progress": "[==>   ] 1MB/3MB"},
    {"aux": {"ID": "sha256:feedbeef"}},
    {"stream": "Successfully built feedbeef\n"},
]

ARCHIVES = {
    "/android_arm64": tar_of({"android_arm64/benchmark_model": b"ELF-arm64"}),
    "/host": tar_of({"host/benchmark_model": b"ELF-x86", "host/nnapi_probe": b"ELF-probe"}),
    "/models": tar_of({"models/a.tflite": b"TFL3a", "models/manifest.json": b"{}"}),
    "/report": tar_of({"report/report.md": b"# ok", "report/report.json": b"{}"}),
}
