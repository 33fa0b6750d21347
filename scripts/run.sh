#!/usr/bin/env bash
# Install rollbook into ./.venv and run its main job: a whole venue life through the real node,
# its HTTP/WebSocket API and the embedded EVM (`rollbook demo`). Extra arguments go to
# `rollbook demo` (e.g. --json). The state transition function is compiled with mypyc
# (ROLLBOOK_MYPYC=1, see setup.py); if that fails the demo runs the pure-Python build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[mypyc]'
if ! ROLLBOOK_MYPYC=1 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
     --no-build-isolation --no-deps -e .; then
  echo "mypyc compile of rollbook.execution failed: running the pure-Python build" >&2
fi
exec "$VENV/bin/rollbook" demo "$@"
