# Learning-signal study (issue 14), arm (d0): full LiftedCL with the authors' adversarial setting
# on the synthetic humans (tools/misc/make_synthetic_humans.py --out data/synthetic_humans) with a
# small budget: ResNet-18 at 32 base channels, 64x64 views, batch 32, queue 256. Every other arm
# inherits this file, so the arms share backbone, data and budget; arm (d), full LiftedCL with a
# balanced adversary, is liftedcl_r18_synth_balanced-adv.py. Run all arms with
# tools/analysis/learning_signal.py.
_base_ = [
    '../_base_/models/liftedcl_r50.py',
    '../_base_/datasets/demo_human_crops.py',  # 64x64 views
    '../_base_/schedules/liftedcl_sgd_coslr_200e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    queue_len=256,
    feat_dim=128,
    align_size=4,  # 64x64 views give 2x2 maps
    backbone=dict(depth=18, base_channels=32),  # C5 has 32 * 8 = 256 channels
    neck=dict(in_channels=256, hid_channels=512, out_channels=128),
    equiv_neck=dict(in_channels=256, hid_channels=512, out_channels=128),
    lifting_head=dict(in_channels=256, hid_channels=256),
    discriminator=dict(hid_channels=128, fuse_channels=64),  # the authors' 256/128 ratio
    prior=dict(num_samples=10000))

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root='data/synthetic_humans/coco_human/'))

# The discriminator's gradient is clipped: without it, full LiftedCL (seed 0) had D winning
# (d_acc ~1) for 300 iterations, then a loss spike (loss_d_fake 2.3) and non-finite D outputs
# at iteration 329. Arms without the adversary do not use this wrapper.
optim_wrapper = dict(discriminator=dict(clip_grad=dict(max_norm=10)))

max_iters = 1000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
param_scheduler = dict(
    generator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0)])
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
