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
    echo "creating $VENV with $python"
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  fi
}
