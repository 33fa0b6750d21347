#!/usr/bin/env bash
# Install rollbook with its development tools into ./.venv, then lint, type-check and run the
# whole test suite (slow tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== ruff"
"$VENV/bin/ruff" check src tests
echo "== mypy (strict)"
"$VENV/bin/mypy"
ensure_anvil
echo "== pytest"
# setup.py builds the C hashing loops here: a test fails if that silently did not happen
export ROLLBOOK_REQUIRE_NATIVE=1
set +e
"$VENV/bin/python" -m pytest -n 2 --durations=15 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
