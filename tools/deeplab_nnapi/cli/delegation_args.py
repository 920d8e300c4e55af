"""Argument types shared by the delegation commands (check_delegation, probe_delegation)."""

from __future__ import annotations

import argparse
from typing import List

from deeplab_nnapi.nnapi.delegation import DELEGATES
from deeplab_nnapi.nnapi.rules import MAX_API, MIN_API


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _api(text: str) -> int:
    value = _int(text)
    if not MIN_API <= value <= MAX_API:
        raise argparse.ArgumentTypeError(f"{value} is outside {MIN_API}..{MAX_API}")
    return value


def _apis(text: str) -> List[int]:
    return _unique([_api(part.strip()) for part in text.split(",")], "--android-api")


def _delegates(text: str) -> List[str]:
    out = []
    for part in text.split(","):
        name = part.strip()
        if name not in DELEGATES:
            raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {', '.join(DELEGATES)})")
        out.append(name)
    return _unique(out, "--delegate")


def _unique(values: list, option: str) -> list:
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a value is repeated in {','.join(map(str, values))}")
    return values


def _nonneg(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0 = no limit)")
    return value
