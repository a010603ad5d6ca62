# ResNet-50 3D pose regression on Human3.6M images (paper Table 4, MPJPE / PA-MPJPE in mm; the
# PA-MPJPE columns of Tables 7-9), ImageNet initialisation.
#
# The paper fine-tunes the ResNet-50 regression model of Li et al. 2021 (RLE) with its default
# schedule on S1, S5, S6, S7, S8 and tests on S9, S11. Here, in MMPose:
# * data: preprocess_h36m.py's annotation_body3d/fps10/h36m_{train,test}.npz + images/ and
#   cameras.pkl (tools/dataset_converters/prepare_h36m.py), read by Human36mImageDataset
#   (liftedcl_mm; MMPose's Human36mDataset plus image paths and person boxes), 3D joints in mm;
# * model: MMPose's PoseLifter (no 2D post-processing) with a ResNet-50 and UVDRegressionHead:
#   global pooling -> (u, v, d) per joint (crop position, root-relative depth / 2000 mm) and
#   their sigma, trained with RLELoss3D (Li et al.'s residual log-likelihood with a 3D flow);
#   prediction back-projects with the camera intrinsics at the ground-truth root depth;
# * Li et al.'s schedule: 256x256, Adam 1e-3, 200 epochs, x0.1 at 90 and 120, batch 32 x 4 GPUs,
#   gradient clipping at 35, rotation +-30 deg, scale +-30%, flip;
# * metrics: MMPose's MPJPE, 'mpjpe' (MPJPE) and 'p-mpjpe' (PA-MPJPE), root-relative, in mm.
# Departures: Li et al. also train on MPII (2D) and use synthetic occlusion and colour jitter;
# test frames are all 10 fps frames of S9/S11 (Li et al.: every 64th 50 fps frame).
_base_ = ['mmpose::_base_/default_runtime.py']

custom_imports = dict(imports=['liftedcl_mm'], allow_failed_imports=False)

train_cfg = dict(max_epochs=200, val_interval=10)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3), clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=200, milestones=[90, 120], gamma=0.1, by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=128)

codec = dict(type='RootRelativeUVD', input_size=(256, 256), depth_range=2000., root_index=0)

model = dict(
    type='PoseLifter',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    head=dict(
        type='UVDRegressionHead',
        in_channels=2048,
        num_joints=17,
        loss=dict(type='RLELoss3D'),
        decoder=codec),
    test_cfg=dict(flip_test=False))

dataset_type = 'Human36mImageDataset'
data_root = 'data/h36m/'
meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'ori_shape', 'img_shape', 'input_size',
             'input_center', 'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'camera_param', 'target_root', 'target_img_path')
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_prob=0, scale_factor=(0.7, 1.3), rotate_factor=30),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs', meta_keys=meta_keys)
]
# GenerateTarget also at test time: it keeps lifting_target in gt_instances (for MPJPE) and puts
# target_root in the metainfo (for the head)
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs', meta_keys=meta_keys)
]
h36m_3d = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img='images/'),
    camera_param_file='annotation_body3d/cameras.pkl',
    scale_3d=1000.)
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        h36m_3d, ann_file='annotation_body3d/fps10/h36m_train.npz', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        h36m_3d,
        ann_file='annotation_body3d/fps10/h36m_test.npz',
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = [dict(type='MPJPE', mode='mpjpe'), dict(type='MPJPE', mode='p-mpjpe')]
test_evaluator = val_evaluator

visualizer = dict(type='Pose3dLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
# Atomic saves (safe to kill at any moment), never a checkpoint holding NaN/Inf: as in every
# liftedcl_mm config.
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', save_best='MPJPE', rule='less',
                    max_keep_ckpts=1))
