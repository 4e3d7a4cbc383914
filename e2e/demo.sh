#!/usr/bin/env bash
# The main job: install, build (once), start the sandbox (hub + 6 members), install samizdat's CRDs,
# start the operator, apply a sample AIWorkload and show where it landed. Leaves everything running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash e2e/setup.sh
exec .venv/bin/python -m e2e.demo "$@"
