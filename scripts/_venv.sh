# Sourced by run.sh and test.sh: find a Python >= 3.11 and create ./.venv with it once.
VENV="${ROLLBOOK_VENV:-.venv}"

find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
    then
      echo "$candidate"
      return 0
    fi
  done
  echo "rollbook needs Python >= 3.11 (none found on PATH)" >&2
  return 1
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    local python
    python="$(find_python)"
    echo "creating $VENV with $python" >&2  # stdout is the job's (run.sh --json)
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  fi
}

# anvil (Foundry's dev node): the settlement tests run against it as well as the embedded EVM.
# Installed once from npm into ./.tools (git-ignored); rollbook.settlement.anvil finds it there.
# Without npm (or off Linux x86-64) this says so and carries on: the anvil tests then skip,
# or fail when CI=true.
ANVIL_NPM_PACKAGE="@foundry-rs/anvil-linux-amd64"
ANVIL_NPM_VERSION="1.7.1"  # pinned: CI must be reproducible
ANVIL_BIN=".tools/node_modules/$ANVIL_NPM_PACKAGE/bin/anvil"

ensure_anvil() {
  if [ -n "${ROLLBOOK_ANVIL:-}" ] || [ -x "$ANVIL_BIN" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: anvil ($ANVIL_NPM_PACKAGE) not installed; anvil tests will skip" \
         "(and fail with CI=true). Install Node.js/npm or set ROLLBOOK_ANVIL." >&2
    return 0
  fi
  echo "installing anvil into .tools (npm install $ANVIL_NPM_PACKAGE)" >&2
  if ! npm install --prefix .tools --no-audit --no-fund "$ANVIL_NPM_PACKAGE@$ANVIL_NPM_VERSION"; then
    echo "npm install $ANVIL_NPM_PACKAGE failed: anvil tests will skip (and fail with" \
         "CI=true)" >&2
  fi
}
