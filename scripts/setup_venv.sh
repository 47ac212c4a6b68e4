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
START=$SECONDS
step() { echo "setup [$1/4, $((SECONDS - START)) s]: $2"; }
step 1 "creating $VENV with $("$PY" --version 2>&1)"
"$PY" -m venv "$VENV"
step 2 "upgrading pip"
"$VENV/bin/python" -m pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  step 3 "NVIDIA GPU found: installing the default (CUDA) PyTorch build"
  "$VENV/bin/python" -m pip install -q "torch>=2.3"
else
  step 3 "no NVIDIA GPU: installing the CPU build of PyTorch (torch==2.13.0)"
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
step 4 "installing CodeGym and its extras (dev, sb3, rewards, docker, ray, hf, train): about a minute"
# pip's own lines ("Collecting ...", "Installing collected packages ...") show the progress.
# Errors go to stderr, unfiltered; pip's exit status (not grep's) decides.
set +e
"$VENV/bin/python" -m pip install --progress-bar off -e ".[dev,sb3,rewards,docker,ray,hf,train]" \
  | grep --line-buffered -E "^(Collecting|Building|Installing|Successfully)"
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
  echo "setup: pip install of CodeGym failed (exit $status): see the errors above" >&2
  exit "$status"
fi
touch "$STAMP"
echo "setup: done in $((SECONDS - START)) s: use it with 'source $VENV/bin/activate' (or $VENV/bin/python)"
