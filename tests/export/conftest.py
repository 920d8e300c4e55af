"""Fixtures for the export tests: DeepLab-shaped frozen graphs (built once per session), calibration
images, and a local HTTP server with Range support for the download tests."""

from __future__ import annotations

import http.server
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from export_graphs import NUM_CLASSES, SIZE, GraphSpec, build_frozen_graph  # noqa: E402


@pytest.fixture(scope="session")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def graphs(tf, tmp_path_factory) -> Dict[Tuple[str, str], Path]:
    """Frozen graphs keyed by (shape, kind): shape "patched"|"upstream", kind "float"|"qat"."""
    d = tmp_path_factory.mktemp("graphs")
    out = {}
    for shape in ("patched", "upstream"):
        for kind in ("float", "qat"):
            spec = GraphSpec(size=SIZE, num_classes=NUM_CLASSES, upstream=shape == "upstream",
                             qat=kind == "qat")
            p = d / f"deeplab_{shape}_{kind}.pb"
            p.write_bytes(build_frozen_graph(spec))
            out[(shape, kind)] = p
    return out


@pytest.fixture(scope="session")
def calibration_dir(tmp_path_factory) -> Path:
    """A few generated images like the verification's test image (PNG and .npy, other sizes than the
    model input)."""
    from deeplab_nnapi.export.verify import test_image

    d = tmp_path_factory.mktemp("calibration")
    for i in range(3):
        np.save(d / f"img{i}.npy", test_image(97 + i * 20, 140, seed=10 + i)[0])
    tf = pytest.importorskip("tensorflow")
    (d / "img3.png").write_bytes(tf.io.encode_png(test_image(150, 120, seed=13)[0]).numpy())
    (d / "notes.txt").write_text("not an image; ignored\n")
    return d


# ----------------------------------------------------------------------------------------------------
# local HTTP server


@dataclass
class ServerState:
    files: Dict[str, bytes] = field(default_factory=dict)
    # path -> number of bytes after which the next full/partial response is cut (then cleared)
    cut_after: Dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    refuse_range: bool = False
    requests: list = field(default_factory=list)  # (path, Range header or None)


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        st = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        st.requests.append((self.path, rng))
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and not st.ignore_range:
            start = int(m.group(1))
            if st.refuse_range or start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = st.cut_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def http_server():
    """(base URL, ServerState) of a threaded HTTP server on 127.0.0.1."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.state = ServerState()  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", srv.state  # type: ignore[attr-defined]
    finally:
        srv.shutdown()
        srv.server_close()
