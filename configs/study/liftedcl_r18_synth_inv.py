# Arm (b): the invariant branch alone (MoCo v2 inside LiftedCL); compare with
# mocov2_mmpretrain_r18_synth.py, MMPretrain's own MoCo on the same backbone, data and budget.
_base_ = ['./liftedcl_r18_synth.py']
model = dict(loss_equiv=dict(loss_weight=0.0), loss_adv=dict(loss_weight=0.0))
