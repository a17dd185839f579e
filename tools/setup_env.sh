#!/usr/bin/env bash
# Creates .venv in the repository root with the pinned stack and installs this package in
# editable mode. Idempotent: a second run only redoes the steps whose inputs changed (seconds).
#
# Environment:
#   PYTHON        interpreter for the venv (default: python3.11, else python3)
#   TORCH_SPEC    torch requirement (default torch==2.13.0, the CPU wheel); set it empty to keep the
#                 torch already in .venv, e.g. a CUDA build you installed yourself
#   MAX_JOBS      parallel compile jobs for mmcv and the extension (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=$ROOT/.venv
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mmseg-maskformer

log() { printf '[setup] %s\n' "$*"; }

# Each step records a hash of its inputs; it is skipped while they are unchanged.
step_done() { [ -f "$VENV/.stamp-$1" ] && [ "$(cat "$VENV/.stamp-$1")" = "$2" ]; }
mark_done() { echo "$2" > "$VENV/.stamp-$1"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
  PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
  log "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi

TORCH_SPEC=${TORCH_SPEC-torch==2.13.0}
key=$(hash_of requirements/build.txt; echo "$TORCH_SPEC")
if ! step_done build "$key"; then
  log "installing build requirements (torch, setuptools<82, ninja)"
  $PIP install -q 'pip>=24'
  if [ -n "$TORCH_SPEC" ]; then
    grep -v '^torch' requirements/build.txt > "$VENV/.build-reqs.txt"
    $PIP install -q "$TORCH_SPEC" -r "$VENV/.build-reqs.txt"
  else
    grep -v '^torch' requirements/build.txt | $PIP install -q -r /dev/stdin
  fi
  mark_done build "$key"
fi

# mmcv 2.1.0 exists on the index only as source; its compiled ops take ~10 min to build on two
# cores, so the wheel is kept per torch version in .wheels/ and in the user cache.
TORCH_VERSION=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
WHEEL_DIR=$ROOT/.wheels/torch-$TORCH_VERSION
USER_WHEEL_DIR=$CACHE/wheels/torch-$TORCH_VERSION
mkdir -p "$WHEEL_DIR"
if ! ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  if ls "$USER_WHEEL_DIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    cp "$USER_WHEEL_DIR"/mmcv-2.1.0-*.whl "$WHEEL_DIR"/
  else
    log "building mmcv 2.1.0 with its ops against torch $TORCH_VERSION (about 10 min on 2 cores, once)"
    MMCV_WITH_OPS=1 $PIP wheel -q --no-deps --no-build-isolation mmcv==2.1.0 -w "$WHEEL_DIR"
    mkdir -p "$USER_WHEEL_DIR" && cp "$WHEEL_DIR"/mmcv-2.1.0-*.whl "$USER_WHEEL_DIR"/
  fi
fi

key=$(hash_of requirements/openmmlab.txt requirements/runtime.txt requirements/tests.txt;
      ls "$WHEEL_DIR")
if ! step_done deps "$key"; then
  log "installing mmcv, mmengine, mmsegmentation, mmdet and their run-time and test requirements"
  $PIP install -q --no-deps "$WHEEL_DIR"/mmcv-2.1.0-*.whl -r requirements/openmmlab.txt
  $PIP install -q -r requirements/runtime.txt -r requirements/tests.txt
  mark_done deps "$key"
fi

key=$(hash_of setup.py $(find csrc -type f 2>/dev/null | sort); echo "$TORCH_VERSION")
if ! step_done package "$key" || ! "$VENV/bin/python" -c 'import mmseg_maskformer' 2>/dev/null; then
  log "installing mmseg_maskformer (editable) and building its C++ ops"
  $PIP install -q --no-deps --no-build-isolation -e .
  mark_done package "$key"
fi

"$VENV/bin/python" - <<'EOF'
import mmcv, mmdet, mmengine, mmseg, torch
from mmseg_maskformer import ops
print(f'[setup] ready: torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine '
      f'{mmengine.__version__}, mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, '
      f'compiled ops: {"yes" if ops.extension_available() else "no (pure-PyTorch reference)"}')
EOF
