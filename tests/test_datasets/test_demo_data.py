import filecmp
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'data', 'demo')


def test_demo_data_is_small():
    total = sum(osp.getsize(osp.join(d, f)) for d, _, files in os.walk(DEMO) for f in files)
    assert 0 < total <= 5 * 1024 * 1024


def test_annotations_are_consistent():
    for split in ('train2017', 'val2017'):
        with open(osp.join(DEMO, 'coco', 'annotations', f'person_keypoints_{split}.json')) as f:
            coco = json.load(f)
        cat = coco['categories'][0]
        assert cat['name'] == 'person' and len(cat['keypoints']) == 17
        sizes = {im['id']: (im['width'], im['height']) for im in coco['images']}
        for im in coco['images']:
            assert osp.isfile(osp.join(DEMO, 'coco', split, im['file_name']))
        for ann in coco['annotations']:
            kpts = np.array(ann['keypoints']).reshape(17, 3)
            assert ann['num_keypoints'] == int((kpts[:, 2] > 0).sum()) > 0
            x, y, w, h = ann['bbox']
            iw, ih = sizes[ann['image_id']]
            assert 0 <= x and 0 <= y and x + w <= iw and y + h <= ih and w > 0 and h > 0
            vis = kpts[kpts[:, 2] > 0]
            # Joints lie in the drawn figure's box (limb ends inside the thick strokes).
            assert np.all(vis[:, 0] >= x - 3) and np.all(vis[:, 0] <= x + w + 3)
            assert np.all(vis[:, 1] >= y - 3) and np.all(vis[:, 1] <= y + h + 3)
            assert 0 < ann['area'] <= w * h and ann['iscrowd'] == 0


def test_loadable_by_mmpose_and_xtcocotools():
    from mmpose.datasets import CocoDataset
    from xtcocotools.coco import COCO
    ann = osp.join(DEMO, 'coco', 'annotations', 'person_keypoints_val2017.json')
    coco = COCO(ann)
    assert len(coco.getImgIds()) == 12 and len(coco.getAnnIds()) > 0
    ds = CocoDataset(data_root=osp.join(DEMO, 'coco'),
                     ann_file='annotations/person_keypoints_val2017.json',
                     data_prefix=dict(img='val2017/'), data_mode='topdown', test_mode=False)
    assert len(ds) == len(coco.getAnnIds(iscrowd=False))
    info = ds.get_data_info(0)
    assert info['keypoints'].shape == (1, 17, 2) and osp.isfile(info['img_path'])


def test_generator_is_deterministic(tmp_path):
    proc = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools/misc/make_demo_data.py'), '--out', str(tmp_path),
        '--num-train', '40', '--num-val', '2', '--no-crops'
    ], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ('000000000001.jpg', '000000000040.jpg'):
        assert filecmp.cmp(tmp_path / 'coco' / 'train2017' / name,
                           osp.join(DEMO, 'coco', 'train2017', name), shallow=False)
    assert filecmp.cmp(tmp_path / 'coco' / 'annotations' / 'person_keypoints_train2017.json',
                       osp.join(DEMO, 'coco', 'annotations', 'person_keypoints_train2017.json'),
                       shallow=False)


def test_coco_metric_on_ground_truth_and_noise(tmp_path):
    from mmpose.datasets import CocoDataset
    from mmpose.evaluation import CocoMetric
    root = osp.join(DEMO, 'coco')
    ds = CocoDataset(data_root=root, ann_file='annotations/person_keypoints_val2017.json',
                     data_prefix=dict(img='val2017/'), data_mode='topdown', test_mode=True)
    results = {}
    for noise in (0.0, 8.0):
        metric = CocoMetric(ann_file=osp.join(root, 'annotations/person_keypoints_val2017.json'),
                            outfile_prefix=str(tmp_path / f'r{noise}'))
        metric.dataset_meta = ds.metainfo
        rng = np.random.default_rng(0)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            kpts = info['keypoints'] + rng.normal(0, noise, info['keypoints'].shape)
            metric.process([], [dict(
                id=info['id'], img_id=info['img_id'], category_id=1, ori_shape=(240, 320),
                raw_ann_info=info['raw_ann_info'],
                gt_instances=dict(bbox_scores=np.ones(1), bboxes=info['bbox']),
                pred_instances=dict(keypoints=kpts, keypoint_scores=np.ones((1, 17))))])
        results[noise] = metric.evaluate(len(ds))['coco/AP']
    assert results[0.0] == 1.0
    assert results[8.0] < 0.9
