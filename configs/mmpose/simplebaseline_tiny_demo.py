# Tiny SimpleBaseline fine-tuning on the repository's demo data (data/demo/coco: COCO-format,
# 17 COCO keypoints), initialised from the backbone of the tiny LiftedCL pre-training
# (configs/liftedcl_tiny_demo.py: ResNet-18 with base_channels=8, C5 = 64 channels).
# 128x96 input, 32x24 heatmaps, 40 epochs (~1 min on 2 CPU cores); evaluated with MMPose's
# CocoMetric and PCKAccuracy. The demo's people are 40-100 px wide, so OKS (hence AP) needs
# 2-4 px accuracy that 400 iterations on 79 people do not reach: AP stays 0 and PCK is the
# score that moves.
# The pre-trained backbone is read from work_dirs/demo/backbone.pth; override it with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = ['./simplebaseline_res50_coco-256x192_imagenet.py']

# relative to this file (see configs/_base_/datasets/demo_human_crops.py)
data_root = '{{ fileDirname }}/../../data/demo/coco/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/demo/backbone.pth')),
    head=dict(
        in_channels=64,
        deconv_out_channels=(32, 32, 32),
        deconv_kernel_sizes=(4, 4, 4),
        decoder=codec))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    # ground-truth boxes (the demo has no detection results)
    dataset=dict(data_root=data_root, bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/person_keypoints_val2017.json'),
    # PCK at two thresholds (fractions of the box size), named apart by their prefixes
    dict(type='PCKAccuracy', thr=0.05, prefix='pck0.05'),
    dict(type='PCKAccuracy', thr=0.2, prefix='pck0.2'),
]
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=40, val_interval=40)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=4, start_factor=0.1, by_epoch=False),
]
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=40, max_keep_ckpts=1, save_best='pck0.05/PCK', rule='greater'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'))
