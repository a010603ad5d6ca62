import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
import prepare_coco_human_crops as tool  # noqa: E402

DEMO_COCO = osp.join(ROOT, 'data', 'demo', 'coco')


@pytest.fixture
def coco(tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(osp.join(DEMO_COCO, 'train2017'), root / 'train2017')
    shutil.copytree(osp.join(DEMO_COCO, 'annotations'), root / 'annotations')
    return root


def run(coco_root, out, *extra):
    return tool.main(['--coco-root', str(coco_root), '--split', 'train2017', '--out', str(out),
                      '--workers', '0', '--no-progress', *extra])


def load_coco(root):
    with open(root / 'annotations' / 'person_keypoints_train2017.json') as f:
        return json.load(f)


def save_coco(root, coco):
    with open(root / 'annotations' / 'person_keypoints_train2017.json', 'w') as f:
        json.dump(coco, f)


def test_extend_box_and_crop_geometry():
    assert tool.extend_box(10, 20, 30, 80) == [-5.0, 20.0, 55.0, 100.0]  # tall: widen to 60
    assert tool.extend_box(0, 0, 60, 30) == [0.0, -25.0, 60.0, 55.0]  # wide: heighten to 80
    # A coordinate image: each output pixel must sample its contract position (cv2 warps with
    # 1/32-pixel fixed-point offsets).
    h, w = 100, 80
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx, yy, np.zeros_like(xx)], -1)
    box = [10.3, 5.7, 40.3, 45.7]
    out = tool.crop_box(img, box, 32, 24)
    us, vs = np.meshgrid(np.arange(24), np.arange(32))
    np.testing.assert_allclose(out[..., 0], box[0] + (us + 0.5) * 30 / 24 - 0.5, atol=0.04)
    np.testing.assert_allclose(out[..., 1], box[1] + (vs + 0.5) * 40 / 32 - 0.5, atol=0.04)
    # Strong shrink (area-averaged first): same mapping within 1/32 of an output pixel (12.5
    # source pixels here), the fixed-point step of cv2.warpAffine.
    h, w = 800, 600
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    big = np.stack([xx, yy, np.zeros_like(xx)], -1)
    box = [-50.5, 20.25, 549.5, 820.25]  # partly outside the image
    out = tool.crop_box(big, box, 64, 48)
    us, vs = np.meshgrid(np.arange(48), np.arange(64))
    ex, ey = box[0] + (us + 0.5) * 600 / 48 - 0.5, box[1] + (vs + 0.5) * 800 / 64 - 0.5
    # Output pixels within ~one output pixel of the image border blend with the zero padding.
    inside = (ex > 19) & (ex < w - 19) & (ey > 19) & (ey < h - 19)
    np.testing.assert_allclose(out[..., 0][inside], ex[inside], atol=0.5)
    np.testing.assert_allclose(out[..., 1][inside], ey[inside], atol=0.5)
    assert np.all(out[:, :3] == 0)  # left of the image
    # Outside the image: zero padding.
    pad = tool.crop_box(np.full((10, 10, 3), 200, np.uint8), [-10, -10, 20, 30], 40, 30)
    assert pad[0, 0].tolist() == [0, 0, 0] and pad[15, 15].tolist() == [200, 200, 200]


def test_crops_count_size_and_resume(coco, tmp_path):
    out = tmp_path / 'out'
    assert run(coco, out) == 0
    data = load_coco(coco)
    expected = {(a['image_id'], a['id']) for a in data['annotations']
                if not a['iscrowd'] and a['num_keypoints'] >= 1}
    with open(out / 'annotations' / 'train2017.json') as f:
        listed = json.load(f)['data_list']
    assert {(r['image_id'], r['ann_id']) for r in listed} == expected
    crop_dir = out / 'crops' / 'train2017'
    files = sorted(os.listdir(crop_dir))
    assert files == sorted(f'{i}_{a}.jpg' for i, a in expected)
    for rec in listed[:5]:
        img = cv2.imread(str(crop_dir / rec['img_path']))
        assert img.shape == (256, 192, 3)
        x1, y1, x2, y2 = rec['ext_bbox']
        assert abs((y2 - y1) / (x2 - x1) - 4 / 3) < 1e-3
        bx, by, bw, bh = rec['bbox']
        assert x1 <= bx + 1e-3 and y1 <= by + 1e-3 and x2 >= bx + bw - 1e-3
        assert (rec['src_width'], rec['src_height']) == (320, 240)
    # Stricter filter -> fewer crops.
    strict = tmp_path / 'strict'
    assert run(coco, strict, '--min-keypoints', '12') == 0
    with open(strict / 'annotations' / 'train2017.json') as f:
        n_strict = len(json.load(f)['data_list'])
    assert n_strict == sum(1 for a in data['annotations'] if a['num_keypoints'] >= 12)

    # Second run writes nothing new.
    mtimes = {f: os.stat(crop_dir / f).st_mtime_ns for f in files}
    assert run(coco, out) == 0
    assert {f: os.stat(crop_dir / f).st_mtime_ns for f in files} == mtimes
    # A deleted crop is regenerated; a truncated crop (interrupted copy) is redone; a leftover
    # temporary file is removed and never listed.
    os.remove(crop_dir / files[0])
    with open(crop_dir / files[1], 'r+b') as f:
        f.truncate(100)
    (crop_dir / (tool.TMP_PREFIX + 'abc.jpg')).write_bytes(b'\xff\xd8partial')
    assert run(coco, out) == 0
    assert sorted(os.listdir(crop_dir)) == files
    for name in files[:2]:
        assert cv2.imread(str(crop_dir / name)).shape == (256, 192, 3)
        assert (crop_dir / name).read_bytes().endswith(b'\xff\xd9')
    assert {f: os.stat(crop_dir / f).st_mtime_ns for f in files[2:]} == \
        {f: mtimes[f] for f in files[2:]}


def test_corrupt_source_image_reported(coco, tmp_path, capsys):
    data = load_coco(coco)
    victim = data['images'][0]['file_name']
    path = coco / 'train2017' / victim
    path.write_bytes(path.read_bytes()[:300])  # truncated JPEG
    out = tmp_path / 'out'
    assert run(coco, out) == 1
    err = capsys.readouterr().err
    assert victim in err and 'truncated' in err
    # The other images were still cropped and listed; the broken one's boxes are not.
    with open(out / 'annotations' / 'train2017.json') as f:
        listed = json.load(f)['data_list']
    assert listed and all(r['src_file'] != victim for r in listed)
    assert run(coco, out, '--skip-bad') == 0


def test_malformed_annotations_reported(coco, tmp_path, capsys):
    data = load_coco(coco)
    anns = data['annotations']
    del anns[0]['bbox']
    anns[1]['bbox'] = [1, 2, 'x', 4]
    anns[2]['bbox'] = [10, 10, 0, 5]
    anns[3]['bbox'] = [1000, 1000, 10, 10]
    data['images'][5]['width'] = 'abc'
    ids = [a['id'] for a in anns[:4]]
    save_coco(coco, data)
    out = tmp_path / 'out'
    assert run(coco, out) == 1
    err = capsys.readouterr().err
    assert 'missing key "bbox"' in err and 'not 4 finite numbers' in err
    assert 'zero or negative size' in err and 'outside the 320x240 image' in err
    assert f'image entry {data["images"][5]["id"]}' in err
    for ann_id in ids:
        assert f'annotation {ann_id} ' in err
    assert run(coco, out, '--skip-bad') == 0


def test_missing_inputs_give_clear_errors(tmp_path, capsys):
    assert run(tmp_path / 'nope', tmp_path / 'out') == 2
    assert 'person_keypoints_train2017.json does not exist' in capsys.readouterr().err
    (tmp_path / 'c' / 'annotations').mkdir(parents=True)
    (tmp_path / 'c' / 'annotations' / 'person_keypoints_train2017.json').write_text('{}')
    assert run(tmp_path / 'c', tmp_path / 'out') == 2
    assert 'image folder' in capsys.readouterr().err
    (tmp_path / 'c' / 'train2017').mkdir()
    (tmp_path / 'c' / 'annotations' / 'person_keypoints_train2017.json').write_text('{nope')
    assert run(tmp_path / 'c', tmp_path / 'out') == 2
    assert 'not valid JSON' in capsys.readouterr().err
    (tmp_path / 'c' / 'annotations' / 'person_keypoints_train2017.json').write_text('{}')
    assert run(tmp_path / 'c', tmp_path / 'out') == 2
    assert 'lacks the COCO' in capsys.readouterr().err


def test_multiprocess_cli(coco, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools/dataset_converters/prepare_coco_human_crops.py'),
        '--coco-root', str(coco), '--out', str(out), '--workers', '2', '--no-progress'
    ], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(out / 'annotations' / 'train2017.json') as f:
        n = len(json.load(f)['data_list'])
    assert n == len(os.listdir(out / 'crops' / 'train2017')) > 0


def test_no_box_passing_the_filters_is_an_error(coco, tmp_path, capsys):
    # 17 keypoints is the maximum: demand more and nothing is left
    assert run(coco, tmp_path / 'out', '--min-keypoints', '18') == 1
    err = capsys.readouterr().err
    assert 'no person box passed the filters' in err and '--min-keypoints 18' in err


def test_crop_names_and_file_names_are_confined():
    # normal COCO ids keep the names of data prepared before the checks existed
    assert tool.crop_name(1, 11) == '1_11.jpg'
    assert tool.crop_name('img-7', 0) == 'img-7_0.jpg'
    for bad in ('../x', 'a/b', '..', '.hidden', 'a_b', '', 'x' * 65, 1.0, True, None, [1]):
        with pytest.raises(ValueError, match='is not an integer or a string'):
            tool.crop_name(bad, 1)
        with pytest.raises(ValueError, match=r'^id '):
            tool.crop_name(1, bad)
    img_dir = '/data/coco/train2017'
    for ok in ('a.jpg', 'sub/a.jpg', 'sub/../a.jpg'):
        assert tool.file_name_problem(ok, img_dir) is None
    for bad, needle in (('../a.jpg', 'leads outside'), ('sub/../../a.jpg', 'leads outside'),
                        ('/etc/passwd', 'absolute path'), ('.', 'leads outside'),
                        ('', 'not a non-empty path'), (3, 'not a non-empty path'),
                        ('a\0.jpg', 'not a non-empty path')):
        assert needle in tool.file_name_problem(bad, img_dir), bad
    assert tool.file_name_problem('/elsewhere/a.jpg', img_dir, allow_outside_root=True) is None


def test_worker_refuses_unsafe_ids_itself(tmp_path):
    # the worker checks the crop name again, so a caller bypassing collect_tasks cannot make it
    # write outside its folder either
    crop_dir = tmp_path / 'crops'
    crop_dir.mkdir()
    image = dict(id='../evil', file_name='x.jpg', width=32, height=32)
    task = dict(image=image, img_path=str(tmp_path / 'x.jpg'),
                anns=[dict(id=1, image_id='../evil', bbox=[1, 1, 10, 10])])
    records, bad, written, skipped = tool._Worker(str(crop_dir), 8, 6, 90)(task)
    assert (records, written, skipped) == ([], 0, 0)
    assert bad == [("annotation 1 (image '../evil')",
                    'image_id \'../evil\' is not an integer or a string of at most 64 letters, '
                    'digits and "-"')]
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['crops']
