# SimpleBaseline ResNet-50, COCO 256x192, LiftedCL init, fine-tuned with the 3D kinematic prior
# (paper Table 9): the head of _base_/lifting_kinematic_head.py. Prediction is unchanged
# (heatmaps only).
_base_ = ['./simplebaseline_res50_coco-256x192_liftedcl.py', './_base_/lifting_kinematic_head.py']

model = dict(head={{_base_.kinematic_head}})
