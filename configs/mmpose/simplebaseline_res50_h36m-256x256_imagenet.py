# SimpleBaseline ResNet-50, Human3.6M 2D keypoints 256x256 (paper Table 3), ImageNet init.
#
# MMPose 1.3.2 ships no 2D top-down heatmap config for Human3.6M (its Human36mDataset serves the
# 3D lifting configs). This is the smallest config that trains SimpleBaseline on H36M frames in
# 2D: MMPose's MPII ResNet-50 config (256x256, same schedule) with
# * MMPose's own H36M-17 metainfo (configs/_base_/datasets/h36m.py: joint names, skeleton, flip
#   pairs, sigmas), so heads predict 17 H36M joints;
# * MMPose's BaseCocoStyleDataset reading a COCO-format keypoint json of H36M frames
#   (one annotation per frame: 17 H36M keypoints in MMPose's order, the person bbox, from the
#   ground-truth 2D poses of subjects S1, S5, S6, S7, S8 for training and S9, S11 for testing,
#   as in Qiu et al. 2019, whose schedule the paper follows);
# * PCK@0.5 normalised by the bbox and EPE (px). The paper's JDR normalises by half the head size;
#   MMPose computes that (PCKAccuracy norm_item='head') only for datasets that provide a
#   per-instance head size, which the COCO-style reader does not.
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/mpii/td-hm_res50_8xb64-210e_mpii-256x256.py']

custom_imports = dict(imports=['liftedcl_mm'], allow_failed_imports=False)

dataset_type = 'BaseCocoStyleDataset'
data_root = 'data/h36m/'
metainfo = dict(from_file='configs/_base_/datasets/h36m.py')

model = dict(head=dict(out_channels=17))

h36m_2d = dict(
    _delete_=True,
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    data_mode='topdown',
    data_prefix=dict(img='images/'))
train_dataloader = dict(
    dataset=dict(
        h36m_2d,
        ann_file='annotations/h36m_2d_train.json',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        h36m_2d,
        ann_file='annotations/h36m_2d_test.json',
        test_mode=True,
        pipeline={{_base_.val_pipeline}}))
test_dataloader = val_dataloader

val_evaluator = [dict(type='PCKAccuracy', thr=0.5, norm_item='bbox'), dict(type='EPE')]
test_evaluator = val_evaluator
# Atomic saves (safe to kill at any moment), never a checkpoint holding NaN/Inf: as in every
# liftedcl_mm config (the rest of MMPose's checkpoint settings are kept).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', save_best='PCK', rule='greater'))
