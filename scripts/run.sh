#!/usr/bin/env bash
# Install rollbook into ./.venv and run its main job: a whole venue life through the real node,
# its HTTP/WebSocket API and the embedded EVM (`rollbook demo`). Extra arguments go to
# `rollbook demo` (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e .
exec "$VENV/bin/rollbook" demo "$@"
