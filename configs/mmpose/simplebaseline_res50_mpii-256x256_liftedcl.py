# SimpleBaseline ResNet-50, MPII 256x256 (paper Table 2), initialised from LiftedCL.
_base_ = ['./simplebaseline_res50_mpii-256x256_imagenet.py']

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/liftedcl_r50_coco/backbone.pth')))
