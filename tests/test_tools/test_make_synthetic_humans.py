import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
import make_synthetic_humans as tool  # noqa: E402

# H36M joint of each COCO body keypoint (COCO 5..16), written out here rather than imported so
# the check does not reuse the generator's table: shoulders, elbows, wrists, hips, knees, ankles.
H36M_OF_COCO = {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6,
                16: 3}


def _generate(out, *extra):
    argv = ['--out', str(out), '--num-train', '4', '--num-val', '2', '--workers', '0',
            '--no-progress', '--seed', '3', *extra]
    assert tool.main(argv) == 0


def _files(root):
    found = {}
    for d, _, names in os.walk(root):
        for name in names:
            path = osp.join(d, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, root)] = f.read()
    return found


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp('synth')
    _generate(out)
    return out


def test_same_seed_same_bytes(generated, tmp_path):
    _generate(tmp_path / 'again')
    first, second = _files(generated), _files(tmp_path / 'again')
    assert len(first) > 6 and first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    _generate(tmp_path / 'other', '--seed', '4')
    other = _files(tmp_path / 'other')
    img = 'coco/train2017/000000000001.jpg'
    assert other[img] != first[img]


def test_workers_do_not_change_the_output(generated, tmp_path):
    _generate(tmp_path / 'par', '--workers', '2', '--no-crops')
    par = _files(tmp_path / 'par')
    first = _files(generated)
    assert par and all(par[k] == first[k] for k in par)


@pytest.mark.parametrize('split', ['train2017', 'val2017'])
def test_coco_json_with_3d_truth(generated, split):
    from xtcocotools.coco import COCO
    ann_file = osp.join(generated, 'coco', 'annotations', f'person_keypoints_{split}.json')
    coco = COCO(ann_file)
    assert len(coco.getImgIds()) == (4 if split == 'train2017' else 2)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= len(coco.getImgIds())
    num_checked = 0
    for ann in anns:
        img = coco.loadImgs(ann['image_id'])[0]
        assert osp.isfile(osp.join(generated, 'coco', split, img['file_name']))
        kpts = np.array(ann['keypoints'], float).reshape(17, 3)
        assert ann['num_keypoints'] == int((kpts[:, 2] > 0).sum()) > 0
        k3d = np.array(ann['keypoints_3d'])
        assert k3d.shape == (17, 3)
        assert np.all(k3d[0] == 0)  # root-relative
        # A human, in metres: 1-2.5 m between the farthest joints, in front of the camera.
        span = np.linalg.norm(k3d[:, None] - k3d[None], axis=-1).max()
        assert 1.0 < span < 2.5
        joints = k3d + np.array(ann['root_cam'])
        assert np.all(joints[:, 2] > 0.5)
        # Pinhole: x = f * X / Z + c for every labelled body keypoint.
        focal, principal = img['camera']['focal'], np.array(img['camera']['principal'])
        for coco_k, h36m_k in H36M_OF_COCO.items():
            if kpts[coco_k, 2] > 0:
                proj = focal * joints[h36m_k, :2] / joints[h36m_k, 2] + principal
                np.testing.assert_allclose(kpts[coco_k, :2], proj, atol=0.02)
                num_checked += 1
    assert num_checked > 10


def test_crops_carry_the_3d_truth(generated):
    from liftedcl_mm.datasets import COCOHumanCropDataset
    for split in ('train2017', 'val2017'):
        with open(osp.join(generated, 'coco', 'annotations',
                           f'person_keypoints_{split}.json')) as f:
            by_id = {a['id']: a for a in json.load(f)['annotations']}
        root = osp.join(generated, 'coco_human')
        ds = COCOHumanCropDataset(ann_file=osp.join(root, 'annotations', f'{split}.json'),
                                  data_prefix=dict(img_path=osp.join(root, 'crops', split)),
                                  pipeline=[])
        assert len(ds) == len(by_id)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert osp.isfile(info['img_path'])
            assert info['keypoints_3d'] == by_id[info['ann_id']]['keypoints_3d']


def test_poses_from_a_file(tmp_path):
    # The authors' file has -Y up: a +Z-up pose written with -Y up must come out upright.
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    skels = sample_skeletons(8, seed=1)
    to_minus_y = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float32)  # up +z -> -y
    path = tmp_path / 'poses.pt'
    torch.save(torch.from_numpy(skels @ to_minus_y.T), str(path))
    _generate(tmp_path / 'out', '--poses', str(path), '--up=-y', '--no-crops')
    with open(tmp_path / 'out' / 'coco' / 'annotations' / 'person_keypoints_train2017.json') as f:
        anns = json.load(f)['annotations']
    for ann in anns:
        k3d = np.array(ann['keypoints_3d'])
        # Camera y points down: the head (H36M 10) is above the feet (3, 6) in the image.
        assert k3d[10, 1] < min(k3d[3, 1], k3d[6, 1])


def test_shared_palette_draws_everybody_in_the_same_colours():
    import cv2
    from liftedcl_mm.datasets.synthetic_humans import SHARED_PALETTE, render_people
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    skels = sample_skeletons(3, seed=0)
    for seed in (0, 1):
        img, people, _ = render_people(np.random.default_rng(seed), skels, 240, 320,
                                       SHARED_PALETTE)
        # each person's visible pixels (own mask, not covered by nearer people's) take only
        # palette colours, up to anti-aliasing and the JPEG-free rendering
        palette = np.array(SHARED_PALETTE, np.int32)
        covered = np.zeros(img.shape[:2], bool)
        for person in reversed(people):
            own = (person['mask'] > 0) & ~covered
            inner = cv2.erode(own.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            pixels = img[inner].astype(np.int32)
            if len(pixels):
                nearest = np.abs(pixels[:, None] - palette[None]).sum(-1).min(1)
                assert np.mean(nearest == 0) > 0.9
            covered |= own
    # random colours (the default) differ from person to person
    img, people, _ = render_people(np.random.default_rng(0), skels, 240, 320)
    colours = [set(map(tuple, img[p['mask'] > 0][:50])) for p in people]
    assert not set(map(tuple, SHARED_PALETTE)) >= set().union(*colours)


def test_silhouette_area_is_the_hull_of_the_drawn_pixels(generated):
    from liftedcl_mm.datasets.synthetic_humans import silhouette_area
    square = np.zeros((8, 8), np.uint8)
    square[1:6, 2:7] = 1
    assert silhouette_area(square) == 25
    line = np.zeros((4, 12), np.uint8)
    line[2, 1:11] = 1
    assert silhouette_area(line) == 10  # a 1 px line keeps its pixel area
    ell = np.zeros((12, 12), np.uint8)
    ell[0, :10] = ell[:10, 0] = 1  # hull (0,0) (10,0) (10,1) (1,10) (0,10): 100 - 9 * 9 / 2
    assert silhouette_area(ell) == 59.5
    assert silhouette_area(np.zeros((3, 3), np.uint8)) == 0
    ann_file = osp.join(generated, 'coco', 'annotations', 'person_keypoints_train2017.json')
    with open(ann_file) as f:
        anns = json.load(f)['annotations']
    for ann in anns:
        # positive, at most the box
        assert 0 < ann['area'] <= ann['bbox'][2] * ann['bbox'][3]
    # a solid silhouette fills about half its box (the thin limbs alone ~0.3)
    assert np.mean([a['area'] / (a['bbox'][2] * a['bbox'][3]) for a in anns]) > 0.5
