# SimpleBaseline ResNet-50, Human3.6M 2D 256x256, LiftedCL init, fine-tuned with the 3D kinematic
# prior (paper Table 9, JDR column): the head of _base_/lifting_kinematic_head.py. Prediction
# (heatmaps) and evaluation (JDR) are unchanged.
_base_ = ['./simplebaseline_res50_h36m-256x256_liftedcl.py', './_base_/lifting_kinematic_head.py']

model = dict(head={{_base_.kinematic_head}})
