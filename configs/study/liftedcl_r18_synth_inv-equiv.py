# Arm (c): invariant + equivariant branches, no lifting or adversary.
_base_ = ['./liftedcl_r18_synth.py']
model = dict(loss_adv=dict(loss_weight=0.0))
