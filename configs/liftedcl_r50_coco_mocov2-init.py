# LiftedCL, ResNet-50, COCO person crops, the paper's two-stage setting (IN+CC, Tables 1-6):
# Stage I is the official MoCo v2 ImageNet 200-epoch encoder, Stage II LiftedCL on COCO crops.
#
# Get Stage I once (facebookresearch/moco, `state_dict` with `module.encoder_q.*` keys):
#   wget https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_200ep/moco_v2_200ep_pretrain.pth.tar
#   python tools/model_converters/extract_backbone.py moco_v2_200ep_pretrain.pth.tar \
#       checkpoints/mocov2_r50_imagenet_200e_backbone.pth
# Only the ResNet is initialised (the MoCo projection MLP is dropped); our projectors, lifting
# network and discriminator start at random, and the key encoder copies the initialised query
# encoder on the first iteration.
_base_ = ['./liftedcl_r50_coco.py']

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/mocov2_r50_imagenet_200e_backbone.pth')))
