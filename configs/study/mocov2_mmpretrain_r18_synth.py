# Arm (b) peer: MMPretrain's MoCo (v2 neck and head) with the study's backbone, data, views,
# batch, queue, lr and iterations. loss_inv of LiftedCL carries loss_weight 0.5, so compare
# 2 * loss_inv with this loss.
_base_ = ['./liftedcl_r18_synth.py']

model = dict(
    _delete_=True,
    type='mmpretrain.MoCo',
    queue_len={{_base_.model.queue_len}},
    feat_dim=128,
    momentum=0.001,
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck=dict(type='mmpretrain.MoCoV2Neck', in_channels=256, hid_channels=512,
              out_channels=128, with_avg_pool=True),
    head=dict(type='mmpretrain.ContrastiveHead',
              loss=dict(type='mmpretrain.CrossEntropyLoss'), temperature=0.2))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0)]
model_wrapper_cfg = None
