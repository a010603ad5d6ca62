# LiftedCL, ResNet-50, COCO person crops, single stage from random initialisation (the paper's
# Table 7 "COCO" row): 256x256 views, 32 views/GPU x 4 GPUs = 128, SGD 0.03 cosine, 200 epochs.
# The paper's main results (IN+CC, Tables 1-6) start from MoCo v2 ImageNet weights instead:
# that is configs/liftedcl_r50_coco_mocov2-init.py.
_base_ = [
    '_base_/models/liftedcl_r50.py',
    '_base_/datasets/coco_human_crops.py',
    '_base_/schedules/liftedcl_sgd_coslr_200e.py',
    '_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=32)

# Lifted vs prior skeletons (a picture to every vis backend) and the lifted_plausible /
# lifted_spread scalars every 1000 iterations; delete the line (or set custom_hooks = []) to
# switch it off. Costs < 0.1% of the training time (tools/benchmarks/bench_vis_hook.py).
custom_hooks = [dict(type='LiftedSkeletonVisHook', interval=1000)]
