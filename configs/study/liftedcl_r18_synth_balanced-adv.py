# Arm (h): arm (g) with a discriminator that sees the pose, not the viewpoint or the prior's
# near-constant features: skeletons turned to a canonical yaw before the pose branch, the
# standardisation's std floored at half the median, instance noise on its inputs, and its lr
# decayed with the encoder's.
_base_ = ['./liftedcl_r18_synth_stable-adv.py']
model = dict(
    discriminator=dict(canonical_yaw=True, std_floor=0.5, input_noise=0.5))
param_scheduler = dict(
    discriminator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0)])
