"""The export stage: the eight models from pinned weights, built by DeepLab's own (patched) code.

    python docker/export_stage.py --weights published --models-dir M --sources sources.json --out DIR \
        --record weights.json [--weights-dir DIR] [--local-dir DIR]
    python docker/export_stage.py --weights checkpoint --models-dir M --sources sources.json --out DIR \
        --record weights.json --checkpoint-dir DIR NAME=SHA256 ...

``published`` (the default of the Dockerfile's WEIGHTS): every model of
``tools/deeplab_nnapi/data/published_models.toml`` (a repository at a pinned commit, each file by its sha256;
from ``--local-dir`` instead when given, the build-arg WEIGHTS_DIR) goes through ``tools/export_models.py
--weights-from MODEL`` (``--quantization dummy`` for the dummy-quantized ones, as the table says): the patched
DeepLab graph is built with the model's weights and ranges, converted, verified as one NNAPI partition and
compared with the model tensor by tensor (``fidelity`` in manifest.json). No user input.

``checkpoint``: Google's three checkpoints, each checked against its sha256 (``NAME=SHA256``, the build-args
CKPT_*_SHA256; docker/fetch_checkpoints.py), then ``export_models.py --variants all`` (pascal with its QAT
ranges, cityscapes and ade20k calibrated on the sample photos).

Either way the children see ``DEEPLAB_NNAPI_MODELS_COMMIT`` (the models tree's commit from sources.json, for
manifest.json), and ``--record`` gets the weights' source and the seconds per export. Exit 0 every model
exported, 1 a fetch or an export failed (the other exports still run), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from deeplab_nnapi.errors import ToolError  # noqa: E402
from deeplab_nnapi.export.published import fetch_published, load_published  # noqa: E402
from deeplab_nnapi.fileio import atomic_write  # noqa: E402

EXPORT = [sys.executable, str(REPO / "tools" / "export_models.py")]


def _say(message: str) -> None:
    print(f"export_stage: {message}", file=sys.stderr, flush=True)


def _export(cmd: List[str], env: dict, label: str) -> dict:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took = round(time.monotonic() - start, 1)
    ok = proc.returncode == 0
    if not ok:
        sys.stderr.write(proc.stderr)
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    _say(f"{label}: {'exported' if ok else 'FAILED: ' + last} in {took} s")
    return {"ok": ok, "seconds": took}


def published(args, env: dict) -> dict:
    table = load_published()
    fetched = fetch_published(args.weights_dir, local_dir=args.local_dir, table=table, progress=_say)
    rows = []
    for model, path in fetched:
        cmd = EXPORT + ["--models-dir", str(args.models_dir), "--weights-from", str(path), "--out",
                        str(args.out), "--quiet"]
        if model.quantization:
            cmd += ["--quantization", model.quantization]
        rows.append({"file": model.name, "path": model.path, "sha256": model.sha256,
                     "quantization": model.quantization or "the variant's", **_export(cmd, env, model.name)})
    return {"weights": "published", "source": table.source, "repository": table.repository,
            "commit": table.commit, "license": table.license,
            "from": f"build context: {args.local_name}" if args.local_dir else table.url, "models": rows}


def checkpoint(args, env: dict) -> dict:
    import importlib.util

    script = REPO / "docker" / "fetch_checkpoints.py"
    spec = importlib.util.spec_from_file_location("fetch_checkpoints", script)
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    fetch.main(["--dest", str(args.checkpoint_dir), *args.pins])
    cmd = EXPORT + ["--models-dir", str(args.models_dir), "--out", str(args.out), "--variants", "all",
                    "--checkpoint-dir", str(args.checkpoint_dir), "--allow-unpinned", "--quiet"]
    row = _export(cmd, env, "all variants")
    return {"weights": "checkpoint", "source": "Google's DeepLab checkpoints (tools/deeplab_nnapi/data/"
            "variants.toml), sha256 from the CKPT_*_SHA256 build-args", "pins": list(args.pins),
            "models": [{"file": "all variants", **row}]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", choices=("published", "checkpoint"), required=True)
    ap.add_argument("--models-dir", type=Path, required=True, help="patched tensorflow/models tree")
    ap.add_argument("--sources", type=Path, help="sources.json of the sources stage (the models commit)")
    ap.add_argument("--out", type=Path, required=True, help="output directory for the exported models")
    ap.add_argument("--record", type=Path, required=True, help="JSON file: where the weights came from")
    ap.add_argument("--weights-dir", type=Path, default=Path("weights"), help="published: files go here")
    ap.add_argument("--local-dir", type=Path, help="published: take the files from here instead")
    ap.add_argument("--local-name", default="", help="published: how the report names --local-dir")
    ap.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"), help="checkpoint: cache")
    ap.add_argument("pins", nargs="*", metavar="NAME=SHA256", help="checkpoint: the checkpoints' sha256")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    if args.sources and args.sources.is_file():
        commit = (json.loads(args.sources.read_text(encoding="utf-8")).get("models") or {}).get("commit")
        if commit:
            env["DEEPLAB_NNAPI_MODELS_COMMIT"] = commit
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        record = published(args, env) if args.weights == "published" else checkpoint(args, env)
    except ToolError as exc:
        print(f"export_stage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args.record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.record, (json.dumps(record, indent=2) + "\n").encode())
    failed = [r["file"] for r in record["models"] if not r["ok"]]
    total = sum(r["seconds"] for r in record["models"])
    if failed:
        print(f"export_stage: error: {len(failed)} of {len(record['models'])} exports failed: "
              f"{', '.join(failed)}", file=sys.stderr)
        return 1
    n = len(list(args.out.glob("*.tflite")))
    _say(f"{n} models in {args.out} from {record['source']} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
