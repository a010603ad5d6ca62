# Arm (g): full LiftedCL with the adversarial branch set up as the best variant of the GAN trained
# alone (tools/analysis/adversarial_balance.py, noise inputs, 8000 iterations: 74% plausible lifted
# skeletons, pose spread 0.58 of the prior's, where the authors' setting collapses to one pose):
# the discriminator standardises its inputs (it can then see bone proportions), the lifting head
# has BN in its residual block, and its gradient is clipped at norm 0.1 in each encoder step.
_base_ = ['./liftedcl_r18_synth.py']
model = dict(
    lifting_grad_clip=0.1,
    lifting_head=dict(norm_cfg=dict(type='BN1d')),
    discriminator=dict(standardize=True))
