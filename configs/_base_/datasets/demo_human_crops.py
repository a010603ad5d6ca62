# The shipped synthetic demo crops (data/demo/coco_human), small views: seconds on a CPU.
_base_ = ['./coco_human_crops.py']

# Relative to this file, so `mim train` from any folder finds the shipped copy (the package's
# .mim/ holds configs/ and data/demo/ side by side, like the repository).
data_root = '{{ fileDirname }}/../../../data/demo/coco_human/'
view_scale = 64
view_pipeline = _base_.view_pipeline
view_pipeline[0].scale = view_scale
train_pipeline = _base_.train_pipeline
train_pipeline[1].transforms = [view_pipeline]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
