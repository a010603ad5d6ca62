# SimpleBaseline ResNet-50, MPII 256x256 (paper Table 2, PCKh@0.5), ImageNet initialisation:
# MMPose's own config, unchanged.
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/mpii/td-hm_res50_8xb64-210e_mpii-256x256.py']

custom_imports = dict(imports=['liftedcl_mm'], allow_failed_imports=False)

# Atomic saves (safe to kill at any moment), never a checkpoint holding NaN/Inf: as in every
# liftedcl_mm config (the rest of MMPose's checkpoint settings are kept).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
