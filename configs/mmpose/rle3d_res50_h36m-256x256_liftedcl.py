# ResNet-50 3D pose regression on Human3.6M images (paper Table 4, MPJPE / PA-MPJPE),
# initialised from LiftedCL (the backbone extracted by tools/model_converters/extract_backbone.py).
_base_ = ['./rle3d_res50_h36m-256x256_imagenet.py']

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/liftedcl_r50_coco/backbone.pth')))
