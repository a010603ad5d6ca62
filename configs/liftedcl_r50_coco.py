# LiftedCL, ResNet-50, COCO person crops, the paper's setting: 32 views/GPU x 4 GPUs = 128.
_base_ = [
    '_base_/models/liftedcl_r50.py',
    '_base_/datasets/coco_human_crops.py',
    '_base_/schedules/liftedcl_sgd_coslr_200e.py',
    '_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=32)

# Stage I of the paper: the encoder starts from MoCo v2 ImageNet (200 epochs) weights. They are
# not shipped; to use them, convert the backbone to a plain state dict and set
#   model = dict(backbone=dict(init_cfg=dict(
#       type='Pretrained', checkpoint='checkpoints/mocov2_r50_imagenet_200e_backbone.pth')))
# (the key encoder copies the initialised backbone on the first iteration).
