"""``python -m deeplab_nnapi``: list the commands; ``python -m deeplab_nnapi COMMAND [ARGS]`` runs one.

COMMAND is a console script's name with or without its ``deeplab-`` prefix (``check-delegation``), or a
module of :mod:`deeplab_nnapi.cli` (``check_delegation``).
"""

from __future__ import annotations

import importlib
import sys
from typing import List, Optional, Sequence


def _usage() -> str:
    from deeplab_nnapi import __version__
    from deeplab_nnapi.cli import COMMANDS

    names = [script or module.replace("_", "-") for script, module, _ in COMMANDS]
    width = max(map(len, names))
    return "\n".join([
        f"deeplab-nnapi {__version__}: DeepLab v3 TFLite models as one NNAPI delegate partition",
        "",
        "commands (each has --help and --version):",
        *(f"  {name:<{width}}  {what}" for name, (_, _, what) in zip(names, COMMANDS)),
        "",
        "Run one as its console script, as `python -m deeplab_nnapi NAME [ARGS]` (NAME with or without",
        "'deeplab-'), or from a clone as `python tools/<module>.py`. Docs: README.md and docs/.",
    ]) + "\n"


def _module_for(name: str) -> Optional[str]:
    from deeplab_nnapi.cli import COMMANDS

    key = name.removeprefix("deeplab-").replace("-", "_")
    return next((module for _, module, _ in COMMANDS if module == key), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help", "list"):
        sys.stdout.write(_usage())
        return 0
    if args[0] == "--version":
        from deeplab_nnapi import __version__

        print(f"deeplab-nnapi {__version__}")
        return 0
    module = _module_for(args[0])
    if module is None:
        sys.stderr.write(f"deeplab_nnapi: error: unknown command {args[0]!r}\n\n" + _usage())
        return 2
    sys.argv = [f"deeplab-{module.replace('_', '-')}", *args[1:]]
    return int(importlib.import_module(f"deeplab_nnapi.cli.{module}").main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
