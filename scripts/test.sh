#!/usr/bin/env bash
# Install distillshield with its test tools into .venv and run lint, type checks and tests.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The Spark parity tests (tests/test_spark_parity.py) need a Java runtime for PySpark.
# The gateway's shared-state, log-stream and chaos tests run a real redis-server.
# Install only what is missing; a failed install fails the run (those tests must not
# silently skip in CI).
PKGS=""
command -v java >/dev/null 2>&1 || PKGS="$PKGS openjdk-17-jre-headless"
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || PKGS="$PKGS redis-server"
if [ -n "$PKGS" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "== installing$PKGS (Spark and Redis tests)"
  $SUDO mkdir -p /usr/share/man/man1  # slim images: the JRE package links its man page there
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -c "import distillshield" # fail loudly if the install did not work
echo "== ruff"; .venv/bin/ruff check src tests
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest -q "$@"
