"""Fetch DeepLab checkpoints into the export stage's cache, each checked against a sha256 build-arg.

    python docker/fetch_checkpoints.py --dest DIR NAME=SHA256 [NAME=SHA256 ...]

NAME is a ``[checkpoint.NAME]`` of the variant table (tools/deeplab_nnapi/data/variants.toml). The sha256
comes from the table when it pins one, else from the build-arg; both given must agree. When neither is
given, the archive is downloaded anyway so that the error can print its sha256 (check it against a source
you trust, then pass it with ``--build-arg``). Exit 0 all verified, 1 a mismatch or missing pin, 2 bad
usage.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from deeplab_nnapi.errors import CheckFailed, UsageError
from deeplab_nnapi.export.download import fetch
from deeplab_nnapi.export.variants import load_variants

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", required=True, type=Path, help="cache directory for tools/export_models.py")
    ap.add_argument("pins", nargs="+", metavar="NAME=SHA256")
    args = ap.parse_args(argv)
    table = {v.checkpoint.name: v.checkpoint for v in load_variants().values() if v.checkpoint}
    failures = []
    for pin in args.pins:
        name, _, given = pin.partition("=")
        if name not in table:
            raise UsageError(f"unknown checkpoint {name!r} (known: {', '.join(sorted(table))})")
        ckpt = table[name]
        given = given.strip().lower()
        if given and not SHA256.match(given):
            raise UsageError(f"{name}: {given!r} is not a sha256")
        if given and ckpt.sha256 and given != ckpt.sha256.lower():
            raise UsageError(f"{name}: build-arg sha256 {given} differs from the table's {ckpt.sha256}")
        want = (ckpt.sha256 or given).lower()
        got = fetch(ckpt.url, args.dest, want or None, filename=ckpt.filename, progress=False)
        if not want:
            got.path.unlink()
            failures.append(f"{name}: no sha256 pinned; downloaded {ckpt.filename} has sha256 {got.sha256} "
                            f"(pass --build-arg CKPT_{name.upper()}_SHA256=<verified value>)")
        else:
            print(f"fetch_checkpoints: {ckpt.filename} sha256 {got.sha256} ok")
    if failures:
        raise CheckFailed("; ".join(failures))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (UsageError, CheckFailed) as exc:
        print(f"fetch_checkpoints: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
