# COCO person crops (paper App. A), two MoCo v2 views per crop with their geometry.
# Prepare the data with tools/dataset_converters/prepare_coco_human_crops.py.
dataset_type = 'COCOHumanCropDataset'
data_root = 'data/coco_human/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

view_scale = 256
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

# default_collate (as MMPretrain's MoCo v2): SelfSupDataPreprocessor needs the views stacked into
# V tensors (N, 3, H, W); data samples stay a list.
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/train2017.json',
        data_prefix=dict(img_path='crops/train2017/'),
        pipeline=train_pipeline))
