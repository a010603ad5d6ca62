# SimpleBaseline ResNet-50, COCO 256x192 (paper Table 1), ImageNet initialisation: MMPose's own
# config, unchanged (torchvision ResNet-50 weights, 210 epochs, Adam 5e-4, batch 8x64).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

# liftedcl_mm registers its MMPose modules (LiftingHeatmapHead, KinematicPriorLoss) and the
# safe-globals allow-list that lets torch.load read full liftedcl_mm checkpoints.
custom_imports = dict(imports=['liftedcl_mm'], allow_failed_imports=False)

# Atomic saves (safe to kill at any moment), never a checkpoint holding NaN/Inf: as in every
# liftedcl_mm config (the rest of MMPose's checkpoint settings are kept).
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
