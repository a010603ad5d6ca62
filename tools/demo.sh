#!/usr/bin/env bash
# The main job, end to end, on the demo data that ships with the repository (CPU, a few minutes):
#   install (idempotent) -> tiny LiftedCL pre-training -> extract the backbone
#   -> tiny MMPose SimpleBaseline fine-tuning from it -> COCO keypoint AP.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFTEDCL_VENV:-$REPO/.venv}"
WORK="${1:-$REPO/work_dirs/demo}"
bash "$REPO/tools/install.sh"
PY="$VENV/bin/python"
cd "$REPO"

echo "[demo] 1/4 LiftedCL pre-training (tiny config) -> $WORK/pretrain"
"$PY" tools/train.py configs/liftedcl_tiny_demo.py --work-dir "$WORK/pretrain"
CKPT="$(cat "$WORK/pretrain/last_checkpoint")"

echo "[demo] 2/4 extract the query backbone from $CKPT"
"$PY" tools/model_converters/extract_backbone.py "$CKPT" "$WORK/backbone.pth"

echo "[demo] 3/4 MMPose fine-tuning from the LiftedCL backbone -> $WORK/finetune"
"$PY" tools/train.py configs/mmpose/simplebaseline_tiny_demo.py --work-dir "$WORK/finetune" \
  --cfg-options "model.backbone.init_cfg.checkpoint=$WORK/backbone.pth"
POSE_CKPT="$(cat "$WORK/finetune/last_checkpoint")"

echo "[demo] 4/4 evaluate with MMPose's CocoMetric"
"$PY" tools/test.py configs/mmpose/simplebaseline_tiny_demo.py "$POSE_CKPT" --work-dir "$WORK/test"
echo "[demo] done: checkpoints and logs under $WORK"
