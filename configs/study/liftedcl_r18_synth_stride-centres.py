# Arm (e): arm (d), full LiftedCL, with the equivariant alignment sampling a ResNet's true cell
# centres (stride * j + 0.5 view pixels; docs/CONTRACTS.md, Geometry of views).
_base_ = ['./liftedcl_r18_synth_balanced-adv.py']
model = dict(align_cell_centres='stride')
