#!/usr/bin/env bash
# Install everything (Python packages, and as root the Debian packages for the GUI tests) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq xvfb xauth xdotool x11-apps libgl1 libgl1-mesa-dri libglx-mesa0 >/dev/null
    else
        echo "note: Xvfb/xdotool missing (apt-get install xvfb xauth xdotool libgl1 libgl1-mesa-dri libglx-mesa0);" \
             "GUI tests will be skipped" >&2
    fi
fi
bash scripts/setup.sh
.venv/bin/ruff check studio tests bench plugins
# The suite must leave the checkout as it found it (its data goes to a temporary user data folder).
status() { git status --porcelain --untracked-files=all 2>/dev/null || true; }
before=$(status)
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
after=$(status)
if [ "$before" != "$after" ]; then
    echo "error: the test suite changed the checkout (git status before and after differ):" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    [ "$rc" = 0 ] && rc=1
fi
exit "$rc"
