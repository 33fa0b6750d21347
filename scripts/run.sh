#!/usr/bin/env bash
# Install rollbook into ./.venv and run its main job: a whole venue life through the state
# transition function (`rollbook simulate`). Extra arguments go to `rollbook simulate`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e .
exec "$VENV/bin/rollbook" simulate "$@"
