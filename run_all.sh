#!/usr/bin/env bash
# Main job: execute the notebooks with papermill and rebuild results/ (a thin wrapper around
# `python -m ebcore notebooks`; `./run_all.sh --help` lists every option).
#
#   ./run_all.sh                                  # cpu profile (the default), every notebook
#   ./run_all.sh --profile ci --only vit,swin     # fast check (ci outputs are git-ignored scratch)
#   ./run_all.sh --seeds 0,1,2 -p ratios '[0.2,0.4]' -p criterion taylor
#
# Sets up the virtual environment first if needed (scripts/setup.sh; EBCORE_VENV names another one).
# Exit status: 0 all ran, 1 a notebook or the set-up failed (earlier results are kept), 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${EBCORE_VENV:-.venv}"

# Set-up done? Plain file tests: no `jupyter kernelspec list | grep -q` under pipefail (SIGPIPE flake).
ready() {
  [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/papermill" ] && [ -f "$VENV/share/jupyter/kernels/ebcore/kernel.json" ]
}
if ! ready; then
  for arg in "$@"; do
    case "$arg" in -h|--help) sed -n 2,10p "$0" | cut -c3-; echo "(the full option list needs the set-up: bash scripts/setup.sh)"; exit 0 ;; esac
  done
  bash scripts/setup.sh || { echo "run_all.sh: set-up failed (see above); nothing was run" >&2; exit 1; }
  ready || { echo "run_all.sh: set-up finished but $VENV lacks papermill or the ebcore kernel" >&2; exit 1; }
fi
export EBCORE_CACHE_DIR="${EBCORE_CACHE_DIR:-$PWD/.cache}"
export EBCORE_PROG=run_all.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's ebcore, in the kernels too
exec "$VENV/bin/python" -m ebcore notebooks "$@"
