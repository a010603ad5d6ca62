# SimpleBaseline ResNet-50, Human3.6M 2D 256x256, LiftedCL init, fine-tuned with the 3D kinematic
# prior (paper Table 9, JDR column): a lifting network on the backbone's C5 features predicts
# H36M-17 joints and KinematicPriorLoss penalises bone lengths / joint angles outside the
# skeleton prior's range. Prediction (heatmaps) and evaluation (JDR) are unchanged.
_base_ = ['./simplebaseline_res50_h36m-256x256_liftedcl.py']

model = dict(
    head=dict(
        type='LiftingHeatmapHead',
        lifting_head=dict(
            type='LiftingHead', in_channels=2048, hid_channels=512, num_blocks=1,
            num_joints=17),
        loss_kinematic=dict(type='KinematicPriorLoss', loss_weight=1e-2)))
