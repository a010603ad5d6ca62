# Learning-signal study (issue 14), the fine-tuning arm: a short MMPose SimpleBaseline fine-tuning
# on the synthetic humans (tools/misc/make_synthetic_humans.py --out data/synthetic_humans; COCO
# 17 keypoints, ~8000 train / ~1000 val people) from each arm's init, scored with CocoMetric AP
# and PCK. The backbone is the study's ResNet-18 at 32 base channels (C5 = 256 channels), so the
# pre-trained backbones of every arm load as they are. No init by default (MMPose's random init);
# tools/analysis/study_finetune.py sets init_cfg to the backbone it extracts from a checkpoint.
#
# Schedule: 100 iterations of batch 32 (3200 people, ~0.4 epoch), Adam 1e-3 with 10 warm-up
# iterations then cosine to 0, one evaluation at the end (flip test, ground-truth boxes), the
# demo's 128x96 input and 32x24 heatmaps. Short on purpose: each init must be fine-tuned and scored
# within ~75 s on 2 CPU cores (the study fine-tunes 12 inits within its 60 min); measured with one
# torch thread: ~0.6 s/iteration, ~60 s training + ~15 s on the 1021 val people.
# A short budget also favours inits that already hold useful features. At this budget COCO AP
# stays near 0 (0.000-0.004 in the study, with the silhouette's hull as the annotated area); PCK
# is the score that moves.
_base_ = ['../mmpose/simplebaseline_tiny_demo.py']

# relative to this file, as in the demo config
data_root = '{{ fileDirname }}/../../data/synthetic_humans/coco/'

model = dict(
    backbone=dict(depth=18, base_channels=32, init_cfg=None),
    head=dict(in_channels=256, deconv_out_channels=(64, 64, 64)))

train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=64, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/person_keypoints_val2017.json'),
    dict(type='PCKAccuracy', thr=0.05, prefix='pck0.05'),
    dict(type='PCKAccuracy', thr=0.2, prefix='pck0.2'),
]
test_evaluator = val_evaluator

max_iters = 100
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=10, start_factor=0.1, by_epoch=False),
    dict(type='CosineAnnealingLR', begin=10, end=max_iters, by_epoch=False),
]
auto_scale_lr = dict(base_batch_size=32)
# one checkpoint at the end (study_finetune.py scores it with runner.test())
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
