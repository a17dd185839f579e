#!/usr/bin/env bash
# Usage: tools/demo.sh CONFIG WORK_DIR
# Generates the built-in Shapes data, trains CONFIG on it, evaluates the last checkpoint with
# tools/test.py (prints mIoU) and writes PNG panels (image | ground truth | prediction).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=$1
WORK_DIR=$2
PYTHON=.venv/bin/python
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

start=$(date +%s)
$PYTHON tools/make_shapes_dataset.py --out data/shapes
$PYTHON tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
trained=$(date +%s)
CHECKPOINT=$(cat "$WORK_DIR/last_checkpoint")
$PYTHON tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR/test"
$PYTHON tools/visualize.py "$CONFIG" "$CHECKPOINT" --out-dir "$WORK_DIR/panels" --num 6
end=$(date +%s)
echo "demo done: training $((trained - start)) s, total $((end - start)) s; checkpoint $CHECKPOINT"
