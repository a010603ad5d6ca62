# Arm (d): full LiftedCL with the adversarial branch set up to stay balanced within the study's
# 1000 iterations (issue 14; tools/analysis/adversarial_balance.py and README "Does it learn?"
# have the measurements behind each line). On top of arm (g) (standardised discriminator, BN in
# the lifting head, the lifting head's gradient clipped):
# - the discriminator judges the pose, not the viewpoint or the prior's near-constant features:
#   the pose branch sees each skeleton turned to a canonical yaw (the prior's yaw is uniform and
#   nothing ties the lifted yaw to the camera; with it, D told lifted from prior by orientation
#   alone), the standardisation's std is floored at half the branch median (level hips, std
#   0.002, were magnified 30x), and instance noise of 0.5 std on its inputs;
# - it also sees each bone's log share of the total bone length and each joint's bend signed
#   about the hip line: without them (Psi alone, floored and noisy) it could not see a hip or
#   neck bone at half its length, nor a knee bent the wrong way (Psi is the same for a mirror
#   image), and 1 run in 5 ended with D accuracy over 0.95, 1 in 4 (D lr halved, more lifting
#   steps) under 80% plausible skeletons; with them, seeds 0-3: D 0.86-0.91, 91-100% plausible;
# - its lr decays with the encoder's (a constant D lr against a decayed generator wins the
#   last fifth of training by default);
# - the lifting head's gradient clip is 0.3 (0.1 did not converge within 1000 iterations);
# - 1% of the adversarial gradient reaches the backbone: at initialisation it is ~30-60x the
#   contrastive gradients there (tools/analysis/grad_norms.py: 208-345 against 5-8), and with
#   100% or 10% of it the invariant loss stays near chance (contrastive learning stalls); with
#   1% it learns like arm (c).
# The authors' adversarial setting is arm (d0), liftedcl_r18_synth.py.
_base_ = ['./liftedcl_r18_synth_stable-adv.py']
model = dict(
    lifting_grad_clip=0.3,
    adv_backbone_grad=0.01,
    discriminator=dict(canonical_yaw=True, std_floor=0.5, input_noise=0.5,
                       bone_proportions=True, signed_bends=True))
param_scheduler = dict(
    discriminator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0)])
