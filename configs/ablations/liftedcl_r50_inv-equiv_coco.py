# Table 8: invariant + equivariant contrastive losses, no lifting/adversary.
_base_ = ['../liftedcl_r50_coco.py']
model = dict(loss_adv=dict(loss_weight=0.0))
