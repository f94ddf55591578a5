#!/usr/bin/env bash
# Install (first time) and open the studio on the bundled model. Extra arguments go to `ganstudio`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ganstudio gui "$@"
