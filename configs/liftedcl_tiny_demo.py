# Tiny LiftedCL on the shipped demo crops: 64x64 views, slim ResNet-18, a few iterations.
# Runs in seconds on a CPU; used by the demo script and the tests.
_base_ = [
    '_base_/models/liftedcl_r50.py',
    '_base_/datasets/demo_human_crops.py',
    '_base_/schedules/liftedcl_sgd_coslr_200e.py',
    '_base_/default_runtime.py',
]

model = dict(
    queue_len=64,
    feat_dim=32,
    align_size=4,  # the 64x64 views give 2x2 maps
    backbone=dict(depth=18, base_channels=8),  # C5 has 8 * 8 = 64 channels
    neck=dict(in_channels=64, hid_channels=64, out_channels=32),
    equiv_neck=dict(in_channels=64, hid_channels=64, out_channels=32),
    lifting_head=dict(in_channels=64, hid_channels=32),
    discriminator=dict(hid_channels=32, fuse_channels=16),  # the authors' 256/128 ratio
    prior=dict(num_samples=256))

max_iters = 20
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
# Iteration-based; the length follows train_cfg.max_iters (see the base schedule).
param_scheduler = dict(
    generator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0)])
auto_scale_lr = dict(base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=10, by_epoch=False, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# Lifted vs prior skeletons and the lifted_plausible / lifted_spread scalars after the first
# iteration, every 100 and after the last one (vis_data/vis_image/lifted_skeletons_<iter>.png).
# A picture costs about half an iteration of this tiny model (~20 ms), so 100 keeps the hook
# near 0.5% of the training time (tools/benchmarks/bench_vis_hook.py); 10 would cost ~5%.
# custom_hooks = [] switches it off.
custom_hooks = [dict(type='LiftedSkeletonVisHook', interval=100)]
