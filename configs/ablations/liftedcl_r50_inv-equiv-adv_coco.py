# Table 8: all three losses (the full LiftedCL; same as ../liftedcl_r50_coco.py).
_base_ = ['../liftedcl_r50_coco.py']
