# SimpleBaseline ResNet-50, COCO 256x192 (paper Table 1), initialised from LiftedCL.
# backbone.pth comes from
#   python tools/model_converters/extract_backbone.py work_dirs/liftedcl_r50_coco/epoch_200.pth \
#       work_dirs/liftedcl_r50_coco/backbone.pth
# (or point at the full checkpoint: init_cfg=dict(type='Pretrained', checkpoint=FULL.pth,
#  prefix='backbone.')).
_base_ = ['./simplebaseline_res50_coco-256x192_imagenet.py']

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/liftedcl_r50_coco/backbone.pth')))
