# Arm (f): full LiftedCL with the discriminator's inputs standardised by the prior's statistics.
# The authors' discriminator cannot see bone proportions of unit-norm skeletons (trained alone to
# tell prior skeletons from ones with a bone x0.6 / x1.4: 0.50 held-out accuracy; standardised:
# 0.99; tools/analysis/adversarial_balance.py --mode sensitivity).
_base_ = ['./liftedcl_r18_synth.py']
model = dict(discriminator=dict(standardize=True))
