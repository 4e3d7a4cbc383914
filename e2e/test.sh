#!/usr/bin/env bash
# The test command: unit and property tests, import contracts, types, then the e2e suite on a real sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash e2e/setup.sh
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/pytest tests -q -p no:cacheprovider
.venv/bin/pytest e2e -q -p no:cacheprovider --timeout=900
