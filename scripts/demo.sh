#!/usr/bin/env bash
# Install distillshield into .venv and run the main job on the embedded default scenario.
# Extra arguments go to `distillshield demo` (e.g. --scale 0.1, --corpus ../shared/data/prompts).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -m pip install --quiet -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
exec .venv/bin/distillshield demo "$@"
