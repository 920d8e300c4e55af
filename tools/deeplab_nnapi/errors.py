"""Error types shared by every tool, and the exit codes they map to.

Exit codes, the same for every command:
  0  done (or nothing to do)
  1  the thing asked for does not hold (patch does not apply, model is not one partition, ...)
  2  bad usage or bad input (missing/corrupt file, unknown version, ...)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class ToolError(Exception):
    """An error reported to the user as one line, without a traceback."""

    exit_code = EXIT_USAGE


class UsageError(ToolError):
    """Bad command line or bad input file: exit 2."""

    exit_code = EXIT_USAGE


class CheckFailed(ToolError):
    """The requested condition does not hold (does not apply, not delegated): exit 1."""

    exit_code = EXIT_FAIL
