# The shipped synthetic demo crops (data/demo/coco_human), small views: seconds on a CPU.
_base_ = ['./coco_human_crops.py']

data_root = 'data/demo/coco_human/'
view_scale = 64
view_pipeline = [
    dict(
        type='RandomResizedCropWithGeometry',
        scale=view_scale,
        crop_ratio_range=(0.2, 1.),
        backend='cv2'),
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.4,
                hue=0.1)
        ],
        prob=0.8),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
    dict(
        type='GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=0.5),
    dict(type='RandomFlipWithGeometry', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='MultiViewWithGeometry', num_views=2, transforms=[view_pipeline]),
    dict(type='PackViewsWithGeometry')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
