# The fine-tuning head of paper Table 9, shared by the *_liftedcl-kinematic configs: heatmaps as
# SimpleBaseline, plus a lifting network on the backbone's C5 features that predicts H36M-17
# joints, penalised by KinematicPriorLoss where bone lengths / joint angles leave the skeleton
# prior's range. Prediction stays the heatmaps'.
kinematic_head = dict(
    type='LiftingHeatmapHead',
    lifting_head=dict(
        type='LiftingHead', in_channels=2048, hid_channels=512, num_blocks=1, num_joints=17),
    loss_kinematic=dict(type='KinematicPriorLoss', loss_weight=1e-2))
