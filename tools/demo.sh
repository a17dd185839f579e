#!/usr/bin/env bash
# Usage: tools/demo.sh CONFIG WORK_DIR
# Generates the built-in Shapes data, trains CONFIG on it, evaluates the last checkpoint with
# tools/test.py (prints mIoU), writes PNG panels (image | ground truth | prediction), the training
# curves (WORK_DIR/curves.png) and the per-class IoU (WORK_DIR/iou.png).
#
# Optional, for short runs (the tests use them; both empty by default):
#   DEMO_DATA_OPTIONS  more arguments of tools/make_shapes_dataset.py, after its --out data/shapes
#                      (a later --out wins), e.g. "--out /tmp/shapes --num-train 8 --size 64"
#   DEMO_CFG_OPTIONS   key=value pairs given to --cfg-options of tools/train.py, tools/test.py and
#                      tools/visualize.py, e.g. "train_cfg.max_iters=2 ..." (split at whitespace)
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=$1
WORK_DIR=$2
PYTHON=.venv/bin/python
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
read -r -a DATA_OPTIONS <<< "${DEMO_DATA_OPTIONS:-}"
read -r -a CFG_OPTIONS <<< "${DEMO_CFG_OPTIONS:-}"
if [ ${#CFG_OPTIONS[@]} -gt 0 ]; then CFG_OPTIONS=(--cfg-options "${CFG_OPTIONS[@]}"); fi

start=$(date +%s)
$PYTHON tools/make_shapes_dataset.py --out data/shapes ${DATA_OPTIONS[@]+"${DATA_OPTIONS[@]}"}
$PYTHON tools/train.py "$CONFIG" --work-dir "$WORK_DIR" ${CFG_OPTIONS[@]+"${CFG_OPTIONS[@]}"}
trained=$(date +%s)
CHECKPOINT=$(cat "$WORK_DIR/last_checkpoint")
$PYTHON tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR/test" \
  ${CFG_OPTIONS[@]+"${CFG_OPTIONS[@]}"}
$PYTHON tools/visualize.py "$CONFIG" "$CHECKPOINT" --out-dir "$WORK_DIR/panels" --num 6 \
  ${CFG_OPTIONS[@]+"${CFG_OPTIONS[@]}"}
$PYTHON tools/plot.py curves "$WORK_DIR" --out "$WORK_DIR/curves.png"
$PYTHON tools/plot.py iou "$WORK_DIR/test" --out "$WORK_DIR/iou.png"
end=$(date +%s)
echo "demo done: training $((trained - start)) s, total $((end - start)) s; checkpoint $CHECKPOINT"
