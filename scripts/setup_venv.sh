#!/usr/bin/env bash
# Create .venv and install CodeGym with everything its tests and demo need, from nothing.
# Where no NVIDIA GPU is present, PyTorch is pinned to the CPU build (torch==2.13.0 is served as a CPU
# wheel here; an unpinned torch would pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
STAMP="$VENV/.codegym-installed"
if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt setup.py && "$STAMP" -nt scripts/setup_venv.sh
      && "$STAMP" -nt codegym/execution/_zygote_native.c ]]; then
  exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found: installing the default (CUDA) PyTorch build"
  "$VENV/bin/python" -m pip install -q "torch>=2.3"
else
  echo "setup: no NVIDIA GPU: installing the CPU build of PyTorch (torch==2.13.0)"
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
"$VENV/bin/python" -m pip install -q -e ".[dev,sb3,rewards,docker,ray,hf,train]"
touch "$STAMP"
echo "setup: done ($VENV)"
