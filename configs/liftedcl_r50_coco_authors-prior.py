# LiftedCL, ResNet-50, COCO person crops, with the authors' released skeleton prior as the
# discriminator's "real" samples instead of sampled skeletons (everything else as
# liftedcl_r50_coco.py).
# The file: `norm_joints.pt` of the authors' repository (RichardChen20/LiftedCL on GitHub, MIT
# licence: keep its LICENSE beside it), 5000 H36M-17 skeletons with -Y up; copy it to
# data/priors/authors_norm_joints.pt. It is loaded without pickles and rotated into our +Z-up
# frame; `python tools/misc/sample_skeletons.py --from-file data/priors/authors_norm_joints.pt
# --up=-y --stats` prints its statistics.
_base_ = './liftedcl_r50_coco.py'

model = dict(
    prior=dict(skeleton_file='data/priors/authors_norm_joints.pt', up_axis='-y',
               num_samples=None))
