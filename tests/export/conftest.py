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


# ----------------------------------------------------------------------------------------------------
# the tiny DeepLab-shaped tree and a quantization-aware checkpoint of its network


@dataclass
class TinyQat:
    tree: Path  # the models tree (research/deeplab, research/slim/nets)
    checkpoint: Path  # prefix <dir>/ckpt/model.ckpt, contrib.quantize's variable names
    ranges: Dict[str, Tuple[float, float]]  # <point>/min, <point>/max as written
    frozen: bytes  # the float graph, ImageTensor-free: MobilenetV2/MobilenetV2/input ... ArgMax


def _tiny_ranges(fake) -> Dict[str, Tuple[float, float]]:
    """Distinct, plausible ranges per contrib.quantize point (weights around 0, activations from 0)."""
    ranges = {}
    for i, name in enumerate(fake.QUANT_POINTS):
        if name.endswith("weights_quant"):
            ranges[name] = (-1.0 - 0.05 * i, 0.8 + 0.05 * i)
        elif name.startswith("logits") or name.endswith("bypass_quant") or "/project/" in name:
            ranges[name] = (-4.0 - 0.1 * i, 3.0 + 0.1 * i)  # no ReLU after these
        else:
            ranges[name] = (0.0, 2.0 + 0.1 * i)
    return ranges


@pytest.fixture(scope="session")
def tiny_qat(tf, tmp_path_factory) -> TinyQat:
    """The tiny network built from the test-written tree (through the TF1 compatibility layer), with
    random weights and non-trivial batch norm statistics, saved with contrib.quantize's range variables."""
    import fake_deeplab_tree as fake
    from deeplab_nnapi.export.tf1compat import CompatLayer

    root = fake.write_tree(tmp_path_factory.mktemp("tiny_tree"))
    prefix = tmp_path_factory.mktemp("tiny_ckpt") / "ckpt" / "model.ckpt"
    prefix.parent.mkdir()
    ranges = _tiny_ranges(fake)
    rng = np.random.default_rng(7)
    v1 = tf.compat.v1
    with CompatLayer(root, packages={"nets": "research/slim"}) as layer:
        tiny = layer.import_module("nets.tiny_deeplab")
        g = tf.Graph()
        with g.as_default():
            images = v1.placeholder(tf.float32, [1, fake.CROP, fake.CROP, 3], name="image")
            logits = tiny.logits(images, fake.NUM_CLASSES)
            logits = v1.image.resize_bilinear(logits, [fake.CROP, fake.CROP], align_corners=False)
            argmax = tf.argmax(logits, 3, output_type=tf.int32)
            model_vars = v1.global_variables()
            for name, (lo, hi) in ranges.items():
                v1.get_variable(f"{name}/min", initializer=np.float32(lo), trainable=False)
                v1.get_variable(f"{name}/max", initializer=np.float32(hi), trainable=False)
            with v1.Session(graph=g) as sess:
                feed = {}
                for v in model_vars:
                    shape, leaf = v.shape.as_list(), v.op.name.rsplit("/", 1)[-1]
                    if leaf in ("weights", "depthwise_weights"):
                        value = rng.normal(0, 0.5, shape)
                    elif leaf in ("gamma", "moving_variance"):
                        value = rng.uniform(0.5, 1.5, shape)
                    else:  # beta, moving_mean, biases
                        value = rng.normal(0, 0.2, shape)
                    feed[v.initial_value] = value.astype(np.float32)
                sess.run(v1.global_variables_initializer(), feed)
                v1.train.Saver(v1.global_variables()).save(sess, str(prefix), write_meta_graph=False)
                frozen = v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(),
                                                                     [argmax.op.name])
    assert argmax.op.name == "ArgMax"
    return TinyQat(tree=root, checkpoint=prefix, ranges=ranges, frozen=frozen.SerializeToString())
