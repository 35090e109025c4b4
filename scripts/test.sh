#!/usr/bin/env bash
# The test command: set up if needed, then run the whole suite (unit tests and the notebooks in the
# `ci` profile). Extra arguments go to pytest, e.g. `bash scripts/test.sh -k masks`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export EBCORE_CACHE_DIR="${EBCORE_CACHE_DIR:-$PWD/.cache}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
