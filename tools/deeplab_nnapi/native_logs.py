"""Keep TensorFlow's and LiteRT's native log lines off our stderr.

TensorFlow's C++ runtime and absl print lines such as "WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR", "oneDNN custom operations are on ..." or
"Could not find cuda drivers ..." straight to file descriptor 2. Which of them appear depends on the CPU
and on the environment, and some (the oneDNN line) ignore ``TF_CPP_MIN_LOG_LEVEL`` entirely because they
are printed before TensorFlow reads it. A tool that promises "stderr holds only our own lines" therefore
has to do two things before TensorFlow (or ai-edge-litert) is imported:

1. set the logging environment (``TF_CPP_MIN_LOG_LEVEL=3`` and friends), keeping the user's original
   values for child processes (:func:`child_env`);
2. point file descriptor 2 away from the terminal for the rest of the process, while Python's
   ``sys.stderr`` (our progress lines, errors, tracebacks) keeps writing to the real stderr through a
   duplicate of the original descriptor.

Set ``DEEPLAB_NNAPI_NATIVE_LOGS=1`` to let the native lines through (debugging a crash in TensorFlow).
When ``sys.stderr`` is not the process's descriptor 2 (pytest capturing, a host program that replaced
it), only the environment is set: whoever replaced stderr owns it.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Dict, Mapping, Optional

#: Environment that quiets TensorFlow's C++ and absl logging, gRPC and the CUDA probe.
QUIET_ENV: Mapping[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_CPP_MIN_VLOG_LEVEL": "0",
    "ABSL_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "3",
}

PASS_THROUGH_VAR = "DEEPLAB_NNAPI_NATIVE_LOGS"

_original_env: Optional[Dict[str, Optional[str]]] = None
_redirected = False


def _pass_through() -> bool:
    return os.environ.get(PASS_THROUGH_VAR, "").strip().lower() not in ("", "0", "false", "no")


def _stderr_is_fd2() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def quiet_native_logs() -> None:
    """Set the quiet environment and move native stderr output aside. Idempotent; call it before
    importing tensorflow or ai_edge_litert."""
    global _original_env, _redirected
    if _pass_through():
        return
    if _original_env is None:
        _original_env = {k: os.environ.get(k) for k in QUIET_ENV}
        for key, value in QUIET_ENV.items():
            os.environ[key] = value
    if _redirected or not _stderr_is_fd2():
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.set_inheritable(saved, False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    old = sys.stderr
    sys.stderr = io.TextIOWrapper(io.FileIO(saved, "w", closefd=True), encoding=old.encoding,
                                  errors=old.errors or "backslashreplace", line_buffering=True,
                                  write_through=True)
    _redirected = True


def child_env(base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment a child process should get: ``base`` (default ``os.environ``) with the user's
    own values of the logging variables put back (a child that prints TensorFlow's log on purpose, such as
    an export run whose log we keep, sees what the user set)."""
    env = dict(os.environ if base is None else base)
    if _original_env is not None:
        for key, value in _original_env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
    return env


def import_tensorflow():
    """``import tensorflow`` with the native log lines kept off stderr."""
    quiet_native_logs()
    import tensorflow as tf

    return tf


def litert_interpreter_class():
    """ai_edge_litert's Interpreter class (and OpResolverType), native log lines kept off stderr."""
    quiet_native_logs()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter, OpResolverType
