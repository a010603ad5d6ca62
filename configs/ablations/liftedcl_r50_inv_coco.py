# Table 8: invariant contrastive loss only (MoCo v2 on COCO crops).
_base_ = ['../liftedcl_r50_coco.py']
model = dict(loss_equiv=dict(loss_weight=0.0), loss_adv=dict(loss_weight=0.0))
