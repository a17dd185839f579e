#!/usr/bin/env bash
# Usage: tools/demo.sh CONFIG WORK_DIR
# Generates the built-in Shapes data, trains CONFIG on it, evaluates the last checkpoint with
# tools/test.py (prints mIoU), writes PNG panels (image | ground truth | prediction), the training
# curves (WORK_DIR/curves.png) and the per-class IoU (WORK_DIR/iou.png).
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
$PYTHON tools/plot.py curves "$WORK_DIR" --out "$WORK_DIR/curves.png"
$PYTHON tools/plot.py iou "$WORK_DIR/test" --out "$WORK_DIR/iou.png"
end=$(date +%s)
echo "demo done: training $((trained - start)) s, total $((end - start)) s; checkpoint $CHECKPOINT"
