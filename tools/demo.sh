#!/usr/bin/env bash
# The main job, end to end, on the demo data that ships with the repository (CPU, ~4 minutes):
#   install (idempotent) -> tiny LiftedCL pre-training -> extract the backbone
#   -> tiny MMPose SimpleBaseline fine-tuning from it, and from random init for comparison
#   -> CocoMetric AP and PCK of both -> lifted skeletons of the pre-trained model as a PNG.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFTEDCL_VENV:-$REPO/.venv}"
WORK="${1:-$REPO/work_dirs/demo}"
bash "$REPO/tools/install.sh"
PY="$VENV/bin/python"
POSE_CFG=configs/mmpose/simplebaseline_tiny_demo.py
cd "$REPO"
# One OpenMP thread per process: the data loaders take the other core.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

echo "[demo] 1/6 LiftedCL pre-training (tiny config) -> $WORK/pretrain"
"$PY" tools/train.py configs/liftedcl_tiny_demo.py --work-dir "$WORK/pretrain" --overwrite
CKPT="$(cat "$WORK/pretrain/last_checkpoint")"

echo "[demo] 2/6 extract the query backbone from $CKPT"
"$PY" tools/model_converters/extract_backbone.py "$CKPT" "$WORK/backbone.pth"

echo "[demo] 3/6 MMPose fine-tuning from the LiftedCL backbone -> $WORK/finetune_liftedcl"
"$PY" tools/train.py "$POSE_CFG" --work-dir "$WORK/finetune_liftedcl" --overwrite \
  --cfg-options "model.backbone.init_cfg.checkpoint=$WORK/backbone.pth"

echo "[demo] 4/6 the same fine-tuning from random init -> $WORK/finetune_random"
"$PY" tools/train.py "$POSE_CFG" --work-dir "$WORK/finetune_random" --overwrite \
  --cfg-options model.backbone.init_cfg=None

echo "[demo] 5/6 evaluate both with MMPose's CocoMetric and PCKAccuracy"
for INIT in liftedcl random; do
  "$PY" tools/test.py "$POSE_CFG" "$(cat "$WORK/finetune_$INIT/last_checkpoint")" \
    --work-dir "$WORK/test_$INIT" --out "$WORK/metrics_$INIT.json"
done

echo "[demo] 6/6 lifted skeletons of the pre-trained model"
"$PY" tools/visualization/vis_lifted_skeletons.py "$CKPT" configs/liftedcl_tiny_demo.py \
  $(ls data/demo/coco_human/crops/train2017/*.jpg | head -n 8) --out "$WORK/lifted_skeletons.png"

"$PY" - "$WORK" <<'PYEOF'
import json, sys
work = sys.argv[1]
keys = ('coco/AP', 'coco/AR', 'pck0.05/PCK', 'pck0.2/PCK')
print('\n| backbone init | ' + ' | '.join(keys) + ' |\n|---' * 1 + '|---' * len(keys) + '|')
for init in ('liftedcl', 'random'):
    metrics = json.load(open(f'{work}/metrics_{init}.json'))
    print(f'| {init} | ' + ' | '.join(f'{metrics[k]:.3f}' for k in keys) + ' |')
print('\n(one tiny run each on 79 people; a difference here is not evidence either way:'
      ' see "Does it learn?" in README.md)')
PYEOF
echo "[demo] lifted skeletons: $WORK/lifted_skeletons.png"
echo "[demo] done: checkpoints and logs under $WORK"
