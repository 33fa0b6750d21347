#!/usr/bin/env bash
# Install rollbook with its development tools into ./.venv, then lint, type-check and run the
# whole test suite (slow tests included) on the pure-Python build. Then compile
# rollbook.execution with mypyc (ROLLBOOK_MYPYC=1, see setup.py) and run the STF's suites again
# on the compiled build, with the differential tests against the pure build. Extra arguments go
# to the first (pure, whole-suite) pytest run only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev,mypyc]'
echo "== ruff"
"$VENV/bin/ruff" check src tests
echo "== mypy (strict)"
"$VENV/bin/mypy"
ensure_anvil
# setup.py builds the C hashing loops here: a test fails if that silently did not happen
export ROLLBOOK_REQUIRE_NATIVE=1

run_pytest() {
  set +e
  "$VENV/bin/python" -m pytest -n 2 --durations=15 "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    return 1
  fi
  return "$status"
}

echo "== pytest (pure Python)"
# ROLLBOOK_PURE=1: the reference, even where an earlier run left compiled modules in the tree
ROLLBOOK_PURE=1 run_pytest "$@"

echo "== mypyc: compiling rollbook.execution"
started=$SECONDS
# --no-build-isolation: mypy (pinned in the mypyc extra) comes from the venv, so a default build
# never has to install it
ROLLBOOK_MYPYC=1 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-build-isolation --no-deps -e .
echo "compiled in $((SECONDS - started)) s"
"$VENV/bin/python" -c 'from rollbook._pure import is_compiled; assert is_compiled(), "not compiled"'

echo "== pytest (compiled)"
started=$SECONDS
# the STF's suites and its users (the top-level tests/*.py included: the staleness guard's);
# as --ignore rather than as paths, so that only tests/conftest.py is loaded up front, as in the
# full run (a subdirectory's conftest.py would otherwise shadow it as `conftest`)
compiled_suites=" client commitment execution gateway node options sequencer verifier "
ignored=()
for directory in tests/*/; do
  name="$(basename "$directory")"
  case "$compiled_suites" in
    *" $name "*) ;;
    *) ignored+=("--ignore=tests/$name") ;;
  esac
done
run_pytest tests "${ignored[@]}"
echo "compiled pass in $((SECONDS - started)) s"
