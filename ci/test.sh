#!/usr/bin/env bash
# The README's test command: set up a virtualenv with the package and its test/export extras,
# then run the whole test suite. Works on a fresh machine with Python >= 3.9 and network access
# to PyPI. VENV overrides where the virtualenv goes (default .venv in the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "ci/test.sh: creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
echo "ci/test.sh: installing deeplab-nnapi[test,export,images,fix,pictures,lint,container]"
"$VENV/bin/python" -m pip install --quiet -e ".[test,export,images,fix,pictures,lint,container]"
echo "ci/test.sh: running tests"
exec "$VENV/bin/python" -m pytest "$@"
