"""Reading and writing through the schema object API keeps everything meaningful."""

from __future__ import annotations

import numpy as np
from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes
from deeplab_nnapi.fixer.model_io import (
    BUFFER_ALIGNMENT,
    min_runtime_version,
    read_model,
    schema,
    write_model,
)
from fix_support import PASCAL_513_OS8, argmax_model, run


def _buffer_starts(data: bytes):
    s = schema()
    m = s.Model.GetRootAs(data, 0)
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        if not b.DataIsNone() and b.DataLength():
            yield i, b._tab.Vector(b._tab.Offset(4))


def test_round_trip_runs_identically_and_keeps_everything():
    data = PASCAL_513_OS8.read_bytes()
    out = write_model(read_model(data))
    a, b = read_model(data), read_model(out)
    assert len(a.buffers) == len(b.buffers)
    for x, y in zip(a.buffers, b.buffers):
        assert (x.data is None) == (y.data is None)
        if x.data is not None:
            assert bytes(x.data) == bytes(y.data)
    assert [(m.name, m.buffer) for m in a.metadata] == [(m.name, m.buffer) for m in b.metadata]
    assert min_runtime_version(b) == "1.9.0"
    assert a.description == b.description and a.version == b.version
    assert all(start % BUFFER_ALIGNMENT == 0 for _, start in _buffer_starts(out))
    x = np.random.default_rng(0).integers(0, 256, (1, 513, 513, 3)).astype(np.uint8)
    assert (run(data, x) == run(out, x)).all()


def test_signature_defs_and_metadata_survive_a_fix():
    data = argmax_model()
    result = fix_bytes(data, FixOptions())
    before, after = read_model(data), read_model(result.data)
    sig_a, sig_b = before.signatureDefs[0], after.signatureDefs[0]
    assert sig_a.signatureKey == sig_b.signatureKey == b"serving_default"
    pairs = [[(t.name, t.tensorIndex) for t in sig.outputs] for sig in (sig_a, sig_b)]
    assert pairs[0] == pairs[1]
    assert min_runtime_version(after) == "1.5.0"  # ARG_MAX keeps its version: nothing new needed


def test_nothing_to_fix_gives_the_same_model():
    data = PASCAL_513_OS8.read_bytes()
    result = fix_bytes(data, FixOptions(delegate="patched"))
    assert result.rewrites == [] and result.before.single_partition
    x = np.random.default_rng(1).integers(0, 256, (1, 513, 513, 3)).astype(np.uint8)
    assert (run(data, x) == run(result.data, x)).all()
    assert min_runtime_version(read_model(result.data)) == "1.9.0"
