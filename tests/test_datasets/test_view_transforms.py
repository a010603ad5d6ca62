import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine import DefaultScope
from mmengine.config import Config
from mmengine.dataset import default_collate

from liftedcl_mm.registry import DATASETS, MODELS, TRANSFORMS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def coord_image(h=120, w=90):
    """float32 image whose channels hold each pixel's own column and row index."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xx, yy, np.zeros_like(xx)], axis=-1)


def check_mapping(view, bbox, flip, margin=2):
    """Pixel (u, v) of the view must sample original x = x1 + (u' + 0.5) * bw / W (contract)."""
    vh, vw = view.shape[:2]
    x1, y1, x2, y2 = [float(v) for v in bbox]
    us, vs = np.meshgrid(np.arange(vw), np.arange(vh))
    src_u = vw - 1 - us if flip else us
    exp_x = x1 + (src_u + 0.5) * (x2 - x1) / vw - 0.5  # pixel index value = centre - 0.5
    exp_y = y1 + (vs + 0.5) * (y2 - y1) / vh - 0.5
    inner = (slice(margin, vh - margin), slice(margin, vw - margin))
    np.testing.assert_allclose(view[..., 0][inner], exp_x[inner], atol=0.05)
    np.testing.assert_allclose(view[..., 1][inner], exp_y[inner], atol=0.05)


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_crop_flip_geometry_maps_back(flip_prob):
    crop = TRANSFORMS.build(dict(type='RandomResizedCropWithGeometry', scale=(40, 30),
                                 crop_ratio_range=(0.2, 1.0)))
    flip = TRANSFORMS.build(dict(type='RandomFlipWithGeometry', prob=flip_prob))
    np.random.seed(0)
    for _ in range(10):
        res = flip(crop(dict(img=coord_image())))
        assert res['img'].shape[:2] == (40, 30)
        assert res['crop_bbox'].dtype == np.float32 and res['flip'] is bool(flip_prob)
        check_mapping(res['img'], res['crop_bbox'], res['flip'])


def test_geometry_composes_over_chained_crops_and_flips():
    crop = TRANSFORMS.build(dict(type='RandomResizedCropWithGeometry', scale=64,
                                 crop_ratio_range=(0.3, 1.0)))
    crop2 = TRANSFORMS.build(dict(type='RandomResizedCropWithGeometry', scale=(32, 24),
                                  crop_ratio_range=(0.3, 1.0)))
    flip = TRANSFORMS.build(dict(type='RandomFlipWithGeometry', prob=1.0))
    np.random.seed(1)
    for _ in range(5):
        res = crop2(flip(crop(dict(img=coord_image(200, 160)))))
        assert res['flip']
        # Upsampling then downsampling a linear ramp stays linear; allow resampling error.
        check_mapping(res['img'], res['crop_bbox'], True, margin=3)
        res = flip(res)  # two flips cancel
        assert not res['flip']
        check_mapping(res['img'], res['crop_bbox'], False, margin=3)


def test_multi_view_collects_geometry_and_shares_input_safely():
    img = (np.random.default_rng(0).random((50, 40, 3)) * 255).astype(np.uint8)
    mv = TRANSFORMS.build(dict(
        type='MultiViewWithGeometry', num_views=[2, 1],
        transforms=[[dict(type='RandomResizedCropWithGeometry', scale=16),
                     dict(type='RandomFlipWithGeometry', prob=1.0)], []]))
    res = mv(dict(img=img, img_path='x.jpg', ori_shape=(50, 40)))
    assert len(res['img']) == 3
    assert res['view_bboxes'].shape == (3, 4) and res['view_bboxes'].dtype == np.float32
    assert res['view_flips'].tolist() == [True, True, False]
    np.testing.assert_array_equal(res['view_bboxes'][2], [0, 0, 40, 50])  # no crop: whole image
    assert res['img'][2] is img and img.flags.writeable  # restored after the views

    class InPlace:
        def __call__(self, results):
            results['img'][0, 0] = 0
            return results

    bad = TRANSFORMS.build(dict(type='MultiViewWithGeometry', num_views=1,
                                transforms=[[InPlace()]]))
    with pytest.raises(ValueError):
        bad(dict(img=img))
    assert img.flags.writeable
    with pytest.raises(ValueError, match='num_views'):
        TRANSFORMS.build(dict(type='MultiViewWithGeometry', num_views=[1, 1], transforms=[[]]))


def test_pack_views():
    pack = TRANSFORMS.build(dict(type='PackViewsWithGeometry'))
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    flipped = img[:, ::-1]
    out = pack(dict(img=[img, flipped], view_bboxes=np.zeros((2, 4), np.float32),
                    view_flips=np.array([False, True]), ori_shape=(4, 5), img_path='a.jpg',
                    other='dropped'))
    assert len(out['inputs']) == 2
    for tensor, src in zip(out['inputs'], [img, flipped]):
        assert tensor.dtype == torch.uint8 and tensor.shape == (3, 4, 5)
        assert tensor.is_contiguous()
        np.testing.assert_array_equal(tensor.numpy(), src.transpose(2, 0, 1))
    meta = out['data_samples'].metainfo
    assert meta['view_flips'].tolist() == [False, True] and meta['img_path'] == 'a.jpg'
    assert 'other' not in meta
    with pytest.raises(TypeError, match='list of views'):
        pack(dict(img=img, view_bboxes=0, view_flips=0))
    with pytest.raises(KeyError, match='view_flips'):
        pack(dict(img=[img], view_bboxes=np.zeros((1, 4))))


def test_full_pipeline_from_config_through_preprocessor():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/demo_human_crops.py'))
    ds_cfg = cfg.train_dataloader.dataset
    # MMCV's RandomApply builds its inner transforms in the default scope (set by the runner).
    with DefaultScope.overwrite_default_scope('liftedcl_mm'):
        dataset = DATASETS.build(dict(ds_cfg, data_root=osp.join(ROOT, ds_cfg.data_root)))
        np.random.seed(0)
        batch = default_collate([dataset[i] for i in range(3)])
    pre = MODELS.build(cfg.data_preprocessor)
    out = pre(batch)
    inputs, samples = out['inputs'], out['data_samples']
    assert isinstance(inputs, list) and len(inputs) == 2
    for view in inputs:
        assert view.shape == (3, 3, 64, 64) and view.dtype == torch.float32
        assert abs(float(view.mean())) < 3  # normalised
    assert len(samples) == 3
    for sample in samples:
        assert sample.view_bboxes.shape == (2, 4) and sample.view_flips.shape == (2, )
        assert sample.ori_shape == (256, 192)
        bb = sample.view_bboxes
        assert np.all(bb[:, 0] >= 0) and np.all(bb[:, 2] <= 192) and np.all(bb[:, 3] <= 256)
        # crop_ratio_range (0.2, 1.0) of the 256x192 crop area
        area = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])
        assert np.all(area >= 0.19 * 256 * 192) and np.all(area <= 256 * 192)


def test_views_match_their_bboxes_on_a_real_crop():
    """The packed uint8 view equals resizing the recorded box of the loaded image."""
    path = osp.join(ROOT, 'data/demo/coco_human/crops/train2017')
    name = sorted(f for f in __import__('os').listdir(path) if f.endswith('.jpg'))[0]
    load = TRANSFORMS.build(dict(type='LoadImageWithCheck'))
    mv = TRANSFORMS.build(dict(type='MultiViewWithGeometry', num_views=2, transforms=[[
        dict(type='RandomResizedCropWithGeometry', scale=48),
        dict(type='RandomFlipWithGeometry', prob=0.5)]]))
    np.random.seed(3)
    res = mv(load(dict(img_path=osp.join(path, name))))
    img = load(dict(img_path=osp.join(path, name)))['img']
    for view, bb, fl in zip(res['img'], res['view_bboxes'], res['view_flips']):
        x1, y1, x2, y2 = [int(round(v)) for v in bb]
        ref = cv2.resize(img[y1:y2, x1:x2], (48, 48), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(view, ref[:, ::-1] if fl else ref)


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def test_load_image_with_check(tmp_path):
    good = tmp_path / 'good.jpg'
    cv2.imwrite(str(good), np.full((20, 10, 3), 128, np.uint8))
    load = TRANSFORMS.build(dict(type='LoadImageWithCheck'))
    res = load(dict(img_path=str(good)))
    assert res['img'].shape == (20, 10, 3) and res['ori_shape'] == (20, 10)
    data = good.read_bytes()
    _write(tmp_path / 'trunc.jpg', data[:len(data) // 2])
    _write(tmp_path / 'garbage.jpg', b'\x00garbage' * 20)
    _write(tmp_path / 'empty.jpg', b'')
    with pytest.raises(ValueError, match='trunc.jpg.*truncated'):
        load(dict(img_path=str(tmp_path / 'trunc.jpg')))
    with pytest.raises(ValueError, match='garbage.jpg'):
        load(dict(img_path=str(tmp_path / 'garbage.jpg')))
    with pytest.raises(ValueError, match='empty.jpg'):
        load(dict(img_path=str(tmp_path / 'empty.jpg')))
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        load(dict(img_path=str(tmp_path / 'missing.jpg')))
    lenient = TRANSFORMS.build(dict(type='LoadImageWithCheck', ignore_empty=True))
    assert lenient(dict(img_path=str(tmp_path / 'trunc.jpg'))) is None


def test_preprocessor_needs_default_collate():
    """Why the configs use default_collate: pseudo_collate leaves V lists of N tensors."""
    from mmengine.dataset import pseudo_collate
    pack = TRANSFORMS.build(dict(type='PackViewsWithGeometry'))
    samples = [
        pack(dict(img=[np.full((8, 6, 3), i, np.uint8), np.full((8, 6, 3), 10 + i, np.uint8)],
                  view_bboxes=np.zeros((2, 4), np.float32), view_flips=np.zeros(2, bool)))
        for i in range(3)
    ]
    pre = MODELS.build(dict(type='SelfSupDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1],
                            to_rgb=True))
    out = pre(default_collate(samples))
    assert [tuple(v.shape) for v in out['inputs']] == [(3, 3, 8, 6)] * 2
    assert out['inputs'][1][2, 0, 0, 0] == 12  # view 1 of sample 2
    assert len(out['data_samples']) == 3
    with pytest.raises(TypeError):
        pre(pseudo_collate(samples))


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_crop_equals_mmpretrain_random_resized_crop(backend):
    from mmpretrain.datasets.transforms import RandomResizedCrop
    img = (np.random.default_rng(0).random((70, 50, 3)) * 255).astype(np.uint8)
    args = dict(scale=(32, 24), crop_ratio_range=(0.2, 1.0), backend=backend)
    ours = TRANSFORMS.build(dict(type='RandomResizedCropWithGeometry', **args))
    peer = RandomResizedCrop(**args)
    for seed in range(5):
        np.random.seed(seed)
        a = ours(dict(img=img))
        np.random.seed(seed)
        b = peer(dict(img=img))
        np.testing.assert_array_equal(a['img'], b['img'])
        assert a['img_shape'] == b['img_shape'][:2]
