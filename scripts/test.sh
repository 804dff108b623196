#!/usr/bin/env bash
# Install distillshield with its test tools into .venv and run lint, type checks and tests.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -c "import distillshield" # fail loudly if the install did not work
echo "== ruff"; .venv/bin/ruff check src tests
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest -q "$@"
