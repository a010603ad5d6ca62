import json
import os.path as osp
import shutil

import numpy as np
import pytest

from liftedcl_mm.datasets import COCOHumanCropDataset
from liftedcl_mm.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'data', 'demo', 'coco_human')


@pytest.fixture
def root(tmp_path):
    dst = tmp_path / 'coco_human'
    shutil.copytree(DEMO, dst)
    return dst


def ann_path(root):
    return root / 'annotations' / 'train2017.json'


def test_loads_demo_crops():
    ds = DATASETS.build(dict(type='COCOHumanCropDataset', data_root=DEMO,
                             pipeline=[dict(type='LoadImageWithCheck')]))
    with open(osp.join(DEMO, 'annotations', 'train2017.json')) as f:
        listed = json.load(f)['data_list']
    assert len(ds) == len(listed) > 0
    item = ds[0]
    assert item['img'].shape == (256, 192, 3) and item['img'].dtype == np.uint8
    assert item['img_path'] == osp.join(DEMO, 'crops', 'train2017', listed[0]['img_path'])
    assert item['ann_id'] == listed[0]['ann_id']
    assert ds.metainfo['crop_size'] == [256, 192]


def test_missing_file_and_folder(root, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        COCOHumanCropDataset(data_root=str(root), ann_file='annotations/nope.json')
    with pytest.raises(FileNotFoundError, match='crops/val2017'):
        COCOHumanCropDataset(data_root=str(root), data_prefix=dict(img_path='crops/val2017/'))


@pytest.mark.parametrize('text,match', [('', 'is empty'), ('{not json', 'not valid JSON'),
                                        ('[1, 2]', '"data_list"'), ('{"data_list": []}',
                                                                    'no usable crop')])
def test_bad_annotation_files(root, text, match):
    ann_path(root).write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        COCOHumanCropDataset(data_root=str(root))
    assert 'train2017.json' in str(err.value)


def test_bad_entries_raise_or_are_skipped(root):
    with open(ann_path(root)) as f:
        content = json.load(f)
    n = len(content['data_list'])
    del content['data_list'][0]['img_path']
    content['data_list'][1]['img_path'] = 'missing_crop.jpg'
    with open(ann_path(root), 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match='entry 0 .*train2017.json'):
        COCOHumanCropDataset(data_root=str(root))
    content['data_list'].pop(0)
    with open(ann_path(root), 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match='missing_crop.jpg does not exist'):
        COCOHumanCropDataset(data_root=str(root))
    ds = COCOHumanCropDataset(data_root=str(root), skip_bad=True)
    assert len(ds) == n - 2 and ds.num_skipped == 1


def test_corrupt_crop_named_at_load_time(root):
    with open(ann_path(root)) as f:
        first = json.load(f)['data_list'][0]['img_path']
    path = root / 'crops' / 'train2017' / first
    path.write_bytes(path.read_bytes()[:200])
    ds = COCOHumanCropDataset(data_root=str(root), pipeline=[dict(type='LoadImageWithCheck')])
    with pytest.raises(ValueError, match=first):
        ds.prepare_data(0)
