# SimpleBaseline ResNet-50, Human3.6M 2D 256x256 (paper Table 3), initialised from LiftedCL.
_base_ = ['./simplebaseline_res50_h36m-256x256_imagenet.py']

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/liftedcl_r50_coco/backbone.pth')))
