"""Mutated models for the model tools: check_delegation, fix_model and the model readers they share.

Seeds: the Google-shaped reference model (``reference_support.google_shaped``, 71 ops, 2 MB; when the
reference models are there) and small graphs built with TFLite's schema object API (a DeepLab-like head:
CONV_2D, a whole-map AVERAGE_POOL_2D, RESIZE_BILINEAR with align_corners=True, an int64 ARG_MAX; and the
one-op pool/resize/argmax graphs; when ai-edge-litert is there).

Mutations: bytes overwritten where the tables are (not the weights), 32-bit words set to telling values
(0, -1, the file size, ...), the file cut short, bytes inserted or deleted (every offset after moves),
spans zeroed, garbage appended, a random body behind a valid header; and, on the small seeds, one field
of the model changed through the object API (an operator's opcode or tensors, a tensor's type, shape,
buffer or quantization, an op code, op options of the wrong type or with odd values, the subgraph's
inputs, the schema version, the buffers, the metadata), so that valid flatbuffers with odd content reach
the predictor and the rewrites too.

The property, per tool:

* a model reader (:data:`ModelReader`: ``read(model_bytes)``) returns, or raises
  :class:`~deeplab_nnapi.errors.UsageError`; anything else is a crash, more than :data:`TIME_LIMIT`
  seconds a hang;
* check_delegation (the CLI, in this process) exits 0, 1 or 2; on 2 one line on stderr, no traceback; on
  0/1 with ``--json``, JSON on stdout;
* fix_model (the CLI, ``--no-agreement``) exits 0, 1 or 2 with one line on error and no traceback; it writes
  OUT only on 0, and what it wrote is what it verified: the bytes whose sha256 the report gives, which
  our reader and the schema's object API read back and whose predicted plan is the report's ``after``.
  On 1 or 2 nothing is written (no OUT, no temporary file).

Other readers of the same bytes plug in through :func:`fuzz_readers` (``{"name": read}``); a command-line
reader (such as the C++ delegation probe) through :func:`cli_reader`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import random
import signal
import struct
import subprocess
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from deeplab_nnapi.errors import UsageError

#: A model reader under test: returns (anything) for a model it takes, raises UsageError for one it refuses.
ModelReader = Callable[[bytes], Any]

TIME_LIMIT = 20.0  # seconds for one tool on one model before it counts as a hang
BYTE_MUTATORS = ("flip", "word", "truncate", "splice", "zero", "append", "random-body")
FIELD_MUTATORS = ("op-opcode", "op-tensors", "op-options-type", "op-options-value", "tensor-type",
                  "tensor-shape", "tensor-buffer", "tensor-quant", "opcode", "subgraph-io", "schema",
                  "buffers", "metadata")
_TELLING = (0, 1, 2, 3, 255, 256, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE)
_INT32 = (-(1 << 31), -2, -1, 0, 1, 2, 3, 7, 255, 256, 65535, (1 << 31) - 1)


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Hang in this (main) thread after ``seconds``; a no-op where SIGALRM is not available."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def _alarm(signum, frame):
        raise Hang(f"more than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- seeds --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    #: table region(s) worth mutating: (start, end) byte ranges; the rest is weights
    regions: Tuple[Tuple[int, int], ...]
    small: bool  # cheap to fix, and mutable through the object API


def seeds(reference_models: Sequence[Path] = ()) -> List[Seed]:
    """The seeds available here: the Google-shaped reference model (first of ``reference_models``) and the
    small object-API graphs (with ai-edge-litert)."""
    out: List[Seed] = []
    if reference_models:
        from reference_support import google_shaped

        data = google_shaped(Path(reference_models[0]).read_bytes())
        out.append(Seed("google", data, ((0, 40_000), (len(data) - 4096, len(data))), small=False))
    try:
        small = _small_graphs()
    except (ImportError, UsageError):  # no ai-edge-litert (the container's check stage): schema() refuses
        small = {}
    for name, data in small.items():
        out.append(Seed(name, data, ((0, len(data)),), small=True))
    return out


def _small_graphs() -> Dict[str, bytes]:
    import numpy as np
    from deeplab_nnapi.fixer.model_io import schema, write_model

    s = schema()

    def tensor(name, type_name, shape, quant=None, buffer=0):
        t = s.TensorT()
        t.name, t.type, t.shape, t.buffer = name.encode(), getattr(s.TensorType, type_name), \
            np.asarray(shape, np.int32), buffer
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = np.asarray([quant[0]], np.float32), np.asarray([quant[1]], np.int64)
            t.quantization = q
        return t

    def build(ops: List[Tuple[str, int, List[int], List[int], Optional[str], Any]], tensors, consts, io_):
        model = s.ModelT()
        model.version, model.description = 3, b"odd-model seed"
        model.buffers = [s.BufferT()]
        for k, data in consts.items():
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            model.buffers.append(b)
            tensors[k].buffer = len(model.buffers) - 1
        codes, model.operatorCodes = {}, []
        sg = s.SubGraphT()
        sg.tensors, sg.name, sg.operators = tensors, b"main", []
        for op_type, version, ins, outs, opt_type, opt in ops:
            key = (op_type, version)
            if key not in codes:
                oc = s.OperatorCodeT()
                oc.builtinCode = getattr(s.BuiltinOperator, op_type)
                oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
                oc.version = version
                codes[key] = len(model.operatorCodes)
                model.operatorCodes.append(oc)
            op = s.OperatorT()
            op.opcodeIndex = codes[key]
            op.inputs, op.outputs = np.asarray(ins, np.int32), np.asarray(outs, np.int32)
            if opt_type:
                op.builtinOptionsType, op.builtinOptions = getattr(s.BuiltinOptions, opt_type), opt
            sg.operators.append(op)
        sg.inputs, sg.outputs = np.asarray(io_[0], np.int32), np.asarray(io_[1], np.int32)
        model.subgraphs = [sg]
        b = s.BufferT()
        b.data = np.frombuffer(b"1.14.0".ljust(16, b"\0"), np.uint8)
        model.buffers.append(b)
        md = s.MetadataT()
        md.name, md.buffer = b"min_runtime_version", len(model.buffers) - 1
        model.metadata = [md]
        return write_model(model)

    q = (0.05, 128)
    conv = s.Conv2DOptionsT()
    conv.padding, conv.strideH, conv.strideW = s.Padding.SAME, 1, 1
    conv.fusedActivationFunction = s.ActivationFunctionType.RELU6
    pool = s.Pool2DOptionsT()
    pool.padding, pool.strideH, pool.strideW = s.Padding.VALID, 1, 1
    pool.filterHeight = pool.filterWidth = 17  # the whole map, as DeepLab's image pooling
    resize = s.ResizeBilinearOptionsT()
    resize.alignCorners = True
    argmax = s.ArgMaxOptionsT()
    argmax.outputType = s.TensorType.INT64
    rng = np.random.default_rng(16)
    tensors = [tensor("image", "UINT8", [1, 17, 17, 8], q),             # 0
               tensor("conv_w", "UINT8", [8, 1, 1, 8], (0.02, 120)),    # 1
               tensor("conv_b", "INT32", [8], (0.001, 0)),              # 2
               tensor("features", "UINT8", [1, 17, 17, 8], q),          # 3
               tensor("pooled", "UINT8", [1, 1, 1, 8], q),              # 4
               tensor("size", "INT32", [2]),                            # 5
               tensor("upsampled", "UINT8", [1, 17, 17, 8], q),         # 6
               tensor("axis", "INT32", []),                             # 7
               tensor("labels", "INT64", [1, 17, 17])]                  # 8
    consts = {1: rng.integers(0, 255, (8, 1, 1, 8)).astype(np.uint8),
              2: rng.integers(-50, 50, 8).astype(np.int32),
              5: np.asarray([17, 17], np.int32), 7: np.asarray(3, np.int32)}
    head = build([("CONV_2D", 1, [0, 1, 2], [3], "Conv2DOptions", conv),
                  ("AVERAGE_POOL_2D", 1, [3], [4], "Pool2DOptions", pool),
                  ("RESIZE_BILINEAR", 1, [4, 5], [6], "ResizeBilinearOptions", resize),
                  ("ARG_MAX", 1, [6, 7], [8], "ArgMaxOptions", argmax)], tensors, consts, ([0], [8]))
    return {"head": head}


# -- mutations ----------------------------------------------------------------------------------------------
def _pos(rng: random.Random, seed: Seed, width: int = 1) -> int:
    start, end = rng.choice(seed.regions)
    return rng.randrange(start, max(start + 1, end - width + 1))


def mutate_bytes(rng: random.Random, seed: Seed, how: str) -> bytes:
    buf = bytearray(seed.data)
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            buf[_pos(rng, seed)] = rng.randrange(256)
    elif how == "word":
        p = _pos(rng, seed, 4) & ~3
        value = rng.choice(_TELLING + (len(buf), len(buf) - 4, rng.randrange(1 << 32)))
        buf[p : p + 4] = struct.pack("<I", value & 0xFFFFFFFF)
    elif how == "truncate":
        del buf[rng.choice([rng.randrange(len(buf)), rng.randrange(min(len(buf), 64))]):]
    elif how == "splice":
        p = _pos(rng, seed)
        if rng.random() < 0.5:
            del buf[p : p + rng.randint(1, 16)]
        else:
            buf[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif how == "zero":
        p = _pos(rng, seed)
        n = rng.randint(1, 256)
        buf[p : p + n] = bytes(len(buf[p : p + n]))
    elif how == "append":
        buf += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif how == "random-body":
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 600)))
        buf = bytearray(struct.pack("<I", rng.choice([8, 12, 16, rng.randrange(1 << 16)])) + b"TFL3" + body)
    return bytes(buf)


def _int_like(rng: random.Random) -> int:
    return rng.choice(_INT32 + (rng.randint(-5, 300),))


def mutate_fields(rng: random.Random, seed: Seed, how: str, keep: bool = True) -> Optional[bytes]:
    """One field changed through the schema's object API, or None when the model does not read or the
    writer cannot write it. ``keep``: remember the parsed seed (for seeds used again and again)."""
    from deeplab_nnapi.fixer.model_io import schema, write_model

    s = schema()
    try:
        model = copy.deepcopy(_object_model(seed.data)) if keep else _object_model(seed.data, keep=False)
    except UsageError:
        return None
    if not model.subgraphs or not model.subgraphs[0].operators or not model.subgraphs[0].tensors:
        return None
    try:
        _change(rng, s, model, how)
    except (IndexError, ValueError, TypeError):  # the generator's own limit (an empty list to pick from)
        return None
    try:
        return write_model(model)
    except Exception:  # noqa: BLE001 - the generator's own limit (a value the writer cannot pack)
        return None


def _change(rng: random.Random, s: Any, model: Any, how: str) -> None:
    import numpy as np

    sg = model.subgraphs[0]
    op = rng.choice(sg.operators)
    t = rng.choice(sg.tensors)
    n_t = len(sg.tensors)
    if how == "op-opcode":
        op.opcodeIndex = rng.choice([-1, len(model.operatorCodes), len(model.operatorCodes) + 5,
                                     rng.randrange(len(model.operatorCodes))])
    elif how == "op-tensors":
        arr = list(op.inputs if rng.random() < 0.6 else op.outputs)
        choice = rng.random()
        if choice < 0.2 or not arr:
            arr = []
        elif choice < 0.4:
            arr.append(rng.choice([-1, n_t, rng.randrange(n_t)]))
        else:
            arr[rng.randrange(len(arr))] = rng.choice([-1, -2, n_t, n_t + 100, rng.randrange(n_t)])
        if rng.random() < 0.6:
            op.inputs = np.asarray(arr, np.int32)
        else:
            op.outputs = np.asarray(arr, np.int32)
    elif how == "op-options-type":
        op.builtinOptionsType = rng.randrange(0, 130)
        if rng.random() < 0.3:
            op.builtinOptions = None
            op.builtinOptionsType = rng.choice([0, op.builtinOptionsType])
    elif how == "op-options-value":
        opt = op.builtinOptions
        names = [k for k, v in vars(opt).items() if isinstance(v, (int, bool))] if opt is not None else []
        if not names:
            raise ValueError("nothing to change")
        setattr(opt, rng.choice(names), rng.choice([True, False, *_INT32]))
    elif how == "tensor-type":
        t.type = rng.choice([rng.randrange(0, 20), 99, -1 & 0x7F])
    elif how == "tensor-shape":
        t.shape = np.asarray(rng.choice([[], [0], [-1, 17, 17, 8], [1, 1 << 20, 1 << 20, 8], [1, 17, 17],
                                         [1, 2, 3, 4, 5, 6], [_int_like(rng) for _ in range(4)]]), np.int32)
    elif how == "tensor-buffer":
        n_b = len(model.buffers)
        t.buffer = rng.choice([0, n_b, n_b + 3, rng.randrange(n_b)])
    elif how == "tensor-quant":
        q = s.QuantizationParametersT()
        q.scale = np.asarray(rng.choice([[0.0], [-1.0], [float("nan")], [float("inf")], [], [0.1, 0.2]]),
                             np.float32)
        q.zeroPoint = np.asarray(rng.choice([[0], [-1], [1 << 40], [], [0, 0, 0]]), np.int64)
        t.quantization = q if rng.random() < 0.8 else None
    elif how == "opcode":
        oc = rng.choice(model.operatorCodes)
        oc.builtinCode = rng.choice([rng.randrange(0, 210), 32, 0, 127, 1000])
        oc.deprecatedBuiltinCode = rng.choice([min(oc.builtinCode, 127), rng.randrange(0, 128)])
        if rng.random() < 0.5:
            oc.version = rng.choice([0, 1, 2, 3, 9, 1000, -1])
    elif how == "subgraph-io":
        vals = [rng.choice([-1, 0, n_t - 1, n_t, rng.randrange(n_t)]) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.5:
            sg.inputs = np.asarray(vals, np.int32)
        else:
            sg.outputs = np.asarray(vals, np.int32)
    elif how == "schema":
        r = rng.random()
        if r < 0.4:
            model.version = rng.choice([0, 2, 4, 99])
        elif r < 0.7:
            model.subgraphs = [] if rng.random() < 0.5 else model.subgraphs + [copy.deepcopy(sg)]
        else:
            model.operatorCodes = model.operatorCodes[:-1]
    elif how == "buffers":
        if rng.random() < 0.5:
            model.buffers = model.buffers[: rng.randrange(len(model.buffers))]
        else:
            b = rng.choice(model.buffers)
            b.data = np.frombuffer(bytes(rng.randrange(256) for _ in range(rng.randint(0, 9))), np.uint8)
    elif how == "metadata":
        for md in model.metadata or []:
            if rng.random() < 0.5:
                md.buffer = rng.choice([-1, 0, len(model.buffers), 10_000])
            else:
                md.name = rng.choice([b"min_runtime_version", b"", b"x" * 300])


_OBJECTS: Dict[bytes, Any] = {}


def _object_model(data: bytes, keep: bool = True) -> Any:
    from deeplab_nnapi.fixer.model_io import read_model

    if not keep:
        return read_model(data)
    key = hashlib.sha256(data).digest()
    if key not in _OBJECTS:
        _OBJECTS[key] = read_model(data)
    return _OBJECTS[key]


@dataclass(frozen=True)
class Mutant:
    seed: str
    how: str
    data: bytes
    number: int

    @property
    def label(self) -> str:
        return f"{self.seed}/{self.how}#{self.number}"


def mutants(n: int, seed: int, pool: Sequence[Seed], big_share: Optional[float] = None) -> Iterator[Mutant]:
    """``n`` mutated models from the seeds, reproducible from ``seed``: byte mutations on every seed,
    field mutations (one, sometimes two or three at once) on the small ones; every (seed, mutation) pair in
    turn, or with ``big_share`` that share of the mutants from the big seed (it costs ten times more)."""
    rng = random.Random(seed)
    pairs = [(s, m) for s in pool for m in BYTE_MUTATORS]
    pairs += [(s, m) for s in pool if s.small for m in FIELD_MUTATORS]
    big = [p for p in pairs if not p[0].small]
    small = [p for p in pairs if p[0].small]
    made = 0
    while made < n:
        if big_share is not None and big and small:
            order = [rng.choice(big if rng.random() < big_share else small) for _ in range(len(pairs))]
        else:
            order = pairs[:]
            rng.shuffle(order)
        for s, how in order:
            if made >= n:
                return
            if how in BYTE_MUTATORS:
                data = mutate_bytes(rng, s, how)
            else:
                data = mutate_fields(rng, s, how)
                for _ in range(rng.choice([0, 0, 0, 1, 2])):  # now and then more than one field
                    if data is None:
                        break
                    data = mutate_fields(rng, Seed(s.name, data, s.regions, True), rng.choice(FIELD_MUTATORS),
                                         keep=False)
            if data is None:
                continue
            yield Mutant(s.name, how, data, made)
            made += 1


# -- judging ------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    tool: str
    kind: str  # accepted | refused | exit-0 | exit-1 | exit-2 | written | crash | hang | unverified ...
    wrong: Optional[str] = None


def try_reader(name: str, read: ModelReader, data: bytes) -> Outcome:
    """One reader on one model: accepted, refused (UsageError), or wrong (anything else, or too slow)."""
    try:
        with time_limit(TIME_LIMIT):
            read(data)
        return Outcome(name, "accepted")
    except UsageError as exc:
        if "\n" in str(exc):
            return Outcome(name, "refused", f"a refusal of more than one line: {str(exc)[:200]!r}")
        return Outcome(name, "refused")
    except Hang as exc:
        return Outcome(name, "hang", str(exc))
    except BaseException as exc:  # noqa: BLE001 - exactly what the property forbids
        return Outcome(name, "crash", "".join(traceback.format_exception_only(type(exc), exc)).strip())


def _cli(main: Callable[[List[str]], int], args: List[str]) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with time_limit(TIME_LIMIT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    except Hang as exc:
        return -1, out.getvalue(), f"HANG {exc}"
    except SystemExit as exc:  # argparse: only with bad options, which the harness does not make
        rc = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001
        return -2, out.getvalue(), err.getvalue() + "Traceback (escaped main)\n" + traceback.format_exc()
    return rc, out.getvalue(), err.getvalue()


def _cli_wrong(prog: str, rc: int, out: str, err: str, json_out: bool) -> Optional[str]:
    if rc == -1:
        return f"hang: {err}"
    if "Traceback" in err or rc not in (0, 1, 2):
        return f"exit {rc}, traceback: {err[-500:]}"
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if len(lines) != 1 or not lines[0].startswith(f"{prog}: error:"):
            return f"exit 2 without one error line: {err[:300]!r}"
    elif json_out:
        try:
            json.loads(out)
        except ValueError:
            return f"exit {rc} without JSON on stdout: {out[:200]!r}"
    return None


def check_delegation_cli(rng: random.Random, path: Path) -> Outcome:
    from deeplab_nnapi.cli.check_delegation import main

    args = [str(path), "--json", "--android-api", str(rng.choice([27, 28, 29, 30, 31])),
            "--delegate", rng.choice(["stock", "patched", "stock,patched"])]
    if rng.random() < 0.5:
        args.append("--expect-single-partition")
    if rng.random() < 0.3:
        args += ["--tf-version", rng.choice(["2.0", "2.3", "2.9", "2.21"])]
    if rng.random() < 0.2:
        args += ["--max-partitions", str(rng.choice([0, 1, 3]))]
    rc, out, err = _cli(main, args)
    wrong = _cli_wrong("check_delegation", rc, out, err, json_out=True)
    return Outcome("check_delegation", "hang" if rc == -1 else f"exit-{rc}", wrong)


def fix_model_cli(rng: random.Random, path: Path, out_dir: Path) -> Outcome:
    """fix_model on one model; OUT must be written only on exit 0, and be what the tool verified."""
    from deeplab_nnapi.cli.fix_model import main

    out = out_dir / "fixed.tflite"
    if out.exists():
        out.unlink()
    api = rng.choice([27, 28, 29, 30])
    delegate = rng.choice(["stock", "stock", "patched"])
    args = [str(path), str(out), "--no-agreement", "--json", "--android-api", str(api),
            "--delegate", delegate]
    if rng.random() < 0.3:
        args.append("--approximate")
    if rng.random() < 0.3:
        args.append("--expect-single-partition")
    rc, stdout, err = _cli(main, args)
    wrong = _cli_wrong("fix_model", rc, stdout, err, json_out=(rc == 0))
    left = sorted(p.name for p in out_dir.iterdir() if p.name != "fixed.tflite")
    if left:
        wrong = wrong or f"files left beside OUT: {left}"
        for p in out_dir.iterdir():
            if p.name != "fixed.tflite" and p.is_file():
                p.unlink()
    if rc != 0:
        if out.exists():
            wrong = wrong or f"exit {rc} but OUT was written"
        return Outcome("fix_model", "hang" if rc == -1 else f"exit-{rc}", wrong)
    if not out.exists():
        return Outcome("fix_model", "exit-0", wrong or "exit 0 but OUT is missing")
    return Outcome("fix_model", "written", wrong or _verify_written(out, stdout, api, delegate))


def _verify_written(out: Path, stdout: str, api: int, delegate: str) -> Optional[str]:
    """What fix_model wrote is what it verified: its sha256 is the report's, our reader and the object API
    read it, and the predicted plan of OUT is the report's ``after``."""
    from deeplab_nnapi.fixer.model_io import read_model
    from deeplab_nnapi.fixer.report import plan_summary
    from deeplab_nnapi.nnapi.delegation import DelegateOptions, plan_model
    from deeplab_nnapi.nnapi.tflite_model import load_model

    data = out.read_bytes()
    try:
        report = json.loads(stdout)
    except ValueError:
        return "OUT written without a JSON report"
    if report.get("sha256_out") != hashlib.sha256(data).hexdigest() or not report.get("written"):
        return "OUT is not the model the report verified (sha256 differs)"
    try:
        model = load_model(data, "OUT")
        read_model(data, "OUT")
        opts = DelegateOptions(android_api=api, delegate=delegate, tf_version=report["options"]["tf_version"])
        after = plan_summary(plan_model(model, opts))
    except UsageError as exc:
        return f"OUT does not read back: {exc}"
    if after != report["after"]:
        return "OUT's predicted plan is not the report's 'after'"
    return None


# -- a run --------------------------------------------------------------------------------------------------
@dataclass
class Figures:
    models: int = 0
    by_tool: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    by_mutation: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    wrong: List[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, m: Mutant, o: Outcome) -> None:
        self.by_tool[o.tool][o.kind] += 1
        self.by_mutation[f"{m.seed}/{m.how}"][f"{o.tool}:{o.kind}"] += 1
        if o.wrong:
            self.wrong.append(f"{m.label} {o.tool}: {o.wrong}")

    def to_json(self) -> dict:
        return {"models": self.models, "wrong": len(self.wrong), "seconds": round(self.seconds, 1),
                "outcomes_by_tool": {k: dict(v) for k, v in sorted(self.by_tool.items())},
                "outcomes_by_mutation": {k: dict(v) for k, v in sorted(self.by_mutation.items())},
                "wrong_cases": self.wrong}


def fuzz_readers(readers: Dict[str, ModelReader], models: Sequence[Mutant],
                 figures: Optional[Figures] = None) -> Figures:
    """The hook for any model reader: each ``read(model_bytes)`` on every mutant (see :func:`try_reader`).
    The C++ delegation probe goes in here through :func:`cli_reader`."""
    figures = figures or Figures()
    for m in models:
        for name, read in readers.items():
            figures.add(m, try_reader(name, read, m.data))
    return figures


def cli_reader(argv: Sequence[str], timeout: float = TIME_LIMIT) -> ModelReader:
    """A :data:`ModelReader` from a command that takes a model path last (``argv + [path]``): exit 0 or 1
    = accepted, exit 2 with one line on stderr = refused (UsageError); a signal, a traceback, another exit
    code or several lines = a crash (RuntimeError); past ``timeout`` a hang."""

    def read(data: bytes) -> None:
        with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
            f.write(data)
            f.flush()
            try:
                res = subprocess.run([*argv, f.name], capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise Hang(f"more than {timeout:g} s") from None
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        if res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr:
            raise UsageError(lines[0])
        if res.returncode in (0, 1) and "Traceback" not in res.stderr:
            return
        raise RuntimeError(f"exit {res.returncode}: {res.stderr[-300:]}")

    return read


def python_readers() -> Dict[str, ModelReader]:
    """The Python model readers: the predictor's (``nnapi.tflite_model``) and, with ai-edge-litert, the
    fixer's (the schema object API behind ``fixer.model_io``)."""
    from deeplab_nnapi.nnapi.tflite_model import load_model

    readers: Dict[str, ModelReader] = {"tflite_model.load_model": load_model}
    try:
        from deeplab_nnapi.fixer.model_io import read_model, schema

        schema()
        readers["model_io.read_model"] = read_model
    except (ImportError, UsageError):
        pass
    return readers


def fuzz(n: int, seed: int, pool: Sequence[Seed], work: Path, fix_every: int = 1,
         fix_big_every: int = 25, extra_readers: Optional[Dict[str, ModelReader]] = None,
         big_share: Optional[float] = None) -> Figures:
    """``n`` mutants (see :func:`mutants`) through every Python reader (plus ``extra_readers``),
    check_delegation (CLI, in this process) and fix_model (every ``fix_every``-th small mutant, every
    ``fix_big_every``-th of the big seed: it rewrites 2 MB per run)."""
    started = time.perf_counter()
    figures = Figures()
    readers = {**python_readers(), **(extra_readers or {})}
    can_fix = "model_io.read_model" in readers
    rng = random.Random(seed ^ 0x5EED)
    path = work / "model.tflite"
    out_dir = work / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    big_seen = 0
    for i, m in enumerate(mutants(n, seed, pool, big_share)):
        figures.models += 1
        fuzz_readers(readers, [m], figures)
        path.write_bytes(m.data)
        figures.add(m, check_delegation_cli(rng, path))
        small = next(s.small for s in pool if s.name == m.seed)
        if not small:
            big_seen += 1
        if can_fix and ((small and i % fix_every == 0) or (not small and big_seen % fix_big_every == 0)):
            figures.add(m, fix_model_cli(rng, path, out_dir))
    figures.seconds = time.perf_counter() - started
    return figures
