"""Command-line front ends. Shared plumbing: one-line errors, exit codes, --json output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional, Sequence

from deeplab_nnapi.errors import EXIT_USAGE, ToolError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run(
    prog: str,
    body: Callable[[Optional[Sequence[str]]], int],
    argv: Optional[Sequence[str]] = None,
) -> int:
    """Run a CLI body; turn ToolError/OSError into one line on stderr and the right exit code."""
    try:
        return int(body(argv) or 0)
    except ToolError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # what no layer below turned into a ToolError: still one line, exit 2
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
