# LiftedCL with ResNet-50 (paper Sec. 3, App. C).
model = dict(
    type='LiftedCL',
    queue_len=16384,
    feat_dim=128,
    momentum=0.001,  # MMEngine EMA convention: key = 0.999 * key + 0.001 * query
    align_size=16,  # shared region resampled to 16x16 locations for loss_equiv
    nonfinite='raise',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=3,
        out_indices=(3, ),
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    # Invariant projector: global pool + MLP 2048-2048-128 (MoCo v2).
    neck=dict(
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True),
    # Equivariant projector: 1x1 conv 2048-2048-128, keeps the 8x8 map.
    equiv_neck=dict(
        type='EquivariantNeck', in_channels=2048, hid_channels=2048, out_channels=128),
    # Lifting network as the authors' (2048-512, one residual block, 512-51), except that the
    # lifted skeletons get the prior's normalisation (root at the origin, unit Frobenius
    # norm); normalize=False gives the authors' raw output, which diverges from random init.
    lifting_head=dict(
        type='LiftingHead', in_channels=2048, hid_channels=512, num_blocks=1, num_joints=17,
        normalize=True),
    # The authors' discriminator: pose and KCS branches of 256, fused 512-128-1.
    discriminator=dict(
        type='KCSDiscriminator', num_joints=17, hid_channels=256, num_blocks=1,
        fuse_channels=128, negative_slope=0.2),
    # L = lambda1 (L_inv + L_equiv) + lambda2 L_adv, lambda1 = lambda2 = 0.5. A weight of 0
    # switches a term (and the modules only it needs) off.
    loss_inv=dict(type='InfoNCELoss', temperature=0.2, loss_weight=0.5),
    loss_equiv=dict(type='EquivariantInfoNCELoss', temperature=0.2, loss_weight=0.5),
    loss_adv=dict(type='LSGANLoss', loss_weight=0.5),
    # Discriminator objective (D(prior) - 1)^2 + D(lifted)^2, as the authors' code (no 1/2).
    loss_disc=dict(type='LSGANLoss', loss_weight=1.0),
    # "Real" skeletons for the discriminator (App. B), sampled once at build time.
    prior=dict(type='SkeletonPriorDataset', num_samples=10000, seed=0))

# The encoder and the discriminator are optimised separately inside LiftedCL.train_step, so
# under DDP each child is wrapped on its own (MMEngine's GAN wrapper).
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)
