# Table 8: lifting network with the adversarial loss only (no contrastive learning).
_base_ = ['../liftedcl_r50_coco.py']
model = dict(loss_inv=dict(loss_weight=0.0), loss_equiv=dict(loss_weight=0.0))
