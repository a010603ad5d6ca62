"""A hostile (or just careless) COCO file fed to ``prepare_coco_human_crops.py``.

Sections follow the problems found:

1. ids / ``file_name`` with ``../`` or absolute paths made the tool write crops, and read images,
   outside ``--out`` / ``--coco-root``;
2. crops and the annotation json were ``-rw-------`` whatever the umask;
3. wrongly typed annotation fields raised tracebacks that did not name the entry.
"""
import json
import os
import os.path as osp
import shutil
import stat
import sys

import pytest

from liftedcl_mm.testing.reliability import umask

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_COCO = osp.join(ROOT, 'data', 'demo', 'coco')
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
import prepare_coco_human_crops as crop_tool  # noqa: E402

NUM_IMAGES = 6  # a small COCO keeps each run well under a second


def _coco(tmp_path, num_images=NUM_IMAGES):
    """A saved copy of the first ``num_images`` demo images and their annotations."""
    root = tmp_path / 'coco'
    with open(osp.join(DEMO_COCO, 'annotations', 'person_keypoints_train2017.json')) as f:
        coco = json.load(f)
    coco['images'] = coco['images'][:num_images]
    kept = {img['id'] for img in coco['images']}
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in kept]
    (root / 'train2017').mkdir(parents=True)
    (root / 'annotations').mkdir()
    for img in coco['images']:
        shutil.copy(osp.join(DEMO_COCO, 'train2017', img['file_name']), root / 'train2017')
    _save(root, coco)
    return root, coco


def _save(root, coco):
    (root / 'annotations' / 'person_keypoints_train2017.json').write_text(json.dumps(coco))


def _run(root, out, *extra):
    return crop_tool.main(['--coco-root', str(root), '--split', 'train2017', '--out', str(out),
                           '--workers', '0', '--no-progress', *extra])


def _listed(out):
    with open(out / 'annotations' / 'train2017.json') as f:
        return json.load(f)['data_list']


def _kept(ann):
    """Whether the tool's default filters keep a (well-formed) annotation."""
    return not ann.get('iscrowd') and ann.get('num_keypoints', 0) >= 1


def _files(top):
    return {p for p in top.rglob('*') if p.is_file() or p.is_symlink()}


def _line(err, prefix):
    """The report line of the entry called ``prefix``."""
    lines = [line.strip() for line in err.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, (prefix, err)
    return lines[0]


# ====================================================== 1. writes and reads outside the roots
def test_1_hostile_ids_and_file_names_write_nothing_outside_out(tmp_path, capsys):
    root, coco = _coco(tmp_path)
    images, anns = coco['images'], coco['annotations']
    # deep enough that '../../../../' from the crop folder still lands inside tmp_path
    out = tmp_path / 'a' / 'b' / 'out'
    evil_img, passwd_img, abs_img = images[0], images[1], images[2]
    for img, new_id in ((evil_img, '../../evil'), (images[3], '../../../../evil')):
        for ann in anns:
            if ann['image_id'] == img['id']:
                ann['image_id'] = new_id
        img['id'] = new_id
    passwd_img['file_name'] = '../../../etc/passwd'
    abs_img['file_name'] = '/abs/path.jpg'
    victim = next(a for a in anns if a['image_id'] == images[4]['id'])
    victim['id'] = '../../../../evil'  # an annotation id that would climb out too
    good = [a for a in anns if a['image_id'] in (images[4]['id'], images[5]['id'])
            and a is not victim and _kept(a)]
    _save(root, coco)
    before = _files(tmp_path)

    assert _run(root, out) == 1
    err = capsys.readouterr().err
    assert "image entry '../../evil' (" in err and "image entry '../../../../evil' (" in err
    assert "id '../../evil' is not an integer or a string" in err
    line = _line(err, f'image entry {passwd_img["id"]} ')
    assert "file_name '../../../etc/passwd' leads outside the image folder" in line
    assert '--allow-outside-root' in line
    assert "file_name '/abs/path.jpg' is an absolute path" in \
        _line(err, f'image entry {abs_img["id"]} ')
    assert "id '../../../../evil' is not an integer" in \
        _line(err, f"annotation '../../../../evil' (image {images[4]['id']})")
    # every annotation of the hostile images is named, by its own id and the image's
    for ann in anns:
        if ann['image_id'] == '../../evil':
            assert "image_id '../../evil' is not an integer" in \
                _line(err, f"annotation {ann['id']} (image '../../evil')")
        if ann['image_id'] == passwd_img['id']:
            assert 'refers to a malformed image entry' in \
                _line(err, f"annotation {ann['id']} (image {passwd_img['id']})")
    crops = {f'{a["image_id"]}_{a["id"]}.jpg' for a in good}
    expected = {out / 'annotations' / 'train2017.json'} | \
        {out / 'crops' / 'train2017' / name for name in crops}
    assert _files(tmp_path) - before == expected
    assert {r['img_path'] for r in _listed(out)} == crops

    # --skip-bad: exit 0, the same entries skipped, still nothing outside the crop folder
    assert _run(root, out, '--skip-bad') == 0
    assert "annotation '../../../../evil'" in capsys.readouterr().err
    assert _files(tmp_path) - before == expected


@pytest.mark.parametrize('hostile', ['../../evil', '../../../../evil', 'ABSOLUTE'])
def test_1_string_image_id_with_a_path_is_skipped_not_written(tmp_path, capsys, hostile):
    # all ids strings (no int/str mix to trip over): the old tool wrote '<id>_<ann>.jpg' wherever
    # the id pointed and exited 0 under --skip-bad
    if hostile == 'ABSOLUTE':
        hostile = str(tmp_path / 'abs')
    root, coco = _coco(tmp_path, num_images=2)
    for img, new_id in zip(coco['images'], (hostile, 'good')):
        for ann in coco['annotations']:
            if ann['image_id'] == img['id']:
                ann['image_id'] = new_id
        img['id'] = new_id
    _save(root, coco)
    out = tmp_path / 'a' / 'b' / 'out'
    before = _files(tmp_path)
    assert _run(root, out, '--skip-bad') == 0
    err = capsys.readouterr().err
    assert f'image entry {hostile!r} (' in err and f'id {hostile!r} is not an integer' in err
    crops = {f'good_{a["id"]}.jpg' for a in coco['annotations'] if a['image_id'] == 'good'}
    assert _files(tmp_path) - before == {out / 'annotations' / 'train2017.json'} | \
        {out / 'crops' / 'train2017' / name for name in crops}


def test_1_reads_confined_to_coco_root_unless_allowed(tmp_path, capsys):
    root, coco = _coco(tmp_path, num_images=3)
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    for img, name in zip(coco['images'][:2], ('rel.jpg', 'abs.jpg')):
        shutil.move(str(root / 'train2017' / img['file_name']), outside / name)
    rel, absolute = coco['images'][:2]
    rel['file_name'] = '../../elsewhere/rel.jpg'
    absolute['file_name'] = str(outside / 'abs.jpg')
    _save(root, coco)

    out = tmp_path / 'out'
    assert _run(root, out, '--skip-bad') == 0  # the third image is still cropped
    err = capsys.readouterr().err
    assert 'leads outside the image folder' in _line(err, f'image entry {rel["id"]} ')
    assert 'is an absolute path' in _line(err, f'image entry {absolute["id"]} ')
    assert {r['image_id'] for r in _listed(out)} == {coco['images'][2]['id']}

    assert _run(root, out, '--allow-outside-root') == 0
    assert 'failed entries' not in capsys.readouterr().err
    listed = _listed(out)
    assert {r['image_id'] for r in listed} == {img['id'] for img in coco['images']}
    assert str(outside / 'abs.jpg') in {r['src_file'] for r in listed}


def test_1_plain_names_inside_the_image_folder_still_read(tmp_path):
    # a sub-folder and a harmless '..' that stays inside are not "outside"
    root, coco = _coco(tmp_path, num_images=2)
    sub = root / 'train2017' / 'sub'
    sub.mkdir()
    first, second = coco['images']
    shutil.move(str(root / 'train2017' / first['file_name']), sub / first['file_name'])
    first['file_name'] = f'sub/{first["file_name"]}'
    second['file_name'] = f'sub/../{second["file_name"]}'
    _save(root, coco)
    out = tmp_path / 'out'
    assert _run(root, out) == 0
    assert {r['image_id'] for r in _listed(out)} == {first['id'], second['id']}


def test_1_split_must_be_a_plain_name(tmp_path, capsys):
    root, _ = _coco(tmp_path, num_images=1)
    assert crop_tool.main(['--coco-root', str(root), '--split', '../train2017', '--out',
                           str(tmp_path / 'out'), '--workers', '0', '--no-progress']) == 2
    assert '--split must be a plain folder name' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_1_safe_string_and_mixed_ids_keep_working(tmp_path, capsys):
    root, coco = _coco(tmp_path, num_images=3)
    images, anns = coco['images'], coco['annotations']
    # image ids mixing int and str, an annotation id that is a safe string
    for ann in anns:
        if ann['image_id'] == images[1]['id']:
            ann['image_id'] = 'img-B'
    images[1]['id'] = 'img-B'
    first = next(a for a in anns if a['image_id'] == images[0]['id'])
    first['id'] = 'ann-7'
    _save(root, coco)
    out = tmp_path / 'out'
    assert _run(root, out) == 0, capsys.readouterr().err
    listed = _listed(out)
    names = [r['img_path'] for r in listed]
    assert f'{images[0]["id"]}_ann-7.jpg' in names
    assert any(name.startswith('img-B_') for name in names)
    assert len(names) == len(set(names)) == len(os.listdir(out / 'crops' / 'train2017'))
    # sorted: integer image ids first, then string ones
    assert [type(r['image_id']) for r in listed][-1] is str
    # normal COCO ids keep their names: data prepared earlier stays valid and resumable
    other = next(a for a in anns if a['image_id'] == images[2]['id'])
    assert f'{images[2]["id"]}_{other["id"]}.jpg' in names


def test_1_ids_giving_one_crop_name_twice_are_reported(tmp_path, capsys):
    root, coco = _coco(tmp_path, num_images=2)
    images, anns = coco['images'], coco['annotations']
    # image 1 and image '1' (a different entry) with the same annotation id: one crop name
    twin = dict(images[1], id=str(images[0]['id']))
    coco['images'] = [images[0], twin]
    ann = next(a for a in anns if a['image_id'] == images[0]['id'])
    copy = dict(ann, image_id=twin['id'])
    coco['annotations'] = [ann, copy]
    _save(root, coco)
    out = tmp_path / 'out'
    assert _run(root, out) == 1
    err = capsys.readouterr().err
    line = _line(err, f"annotation {ann['id']} (image '{twin['id']}')")
    assert f'crop name {images[0]["id"]}_{ann["id"]}.jpg is already taken by annotation ' \
        f'{ann["id"]} (image {images[0]["id"]})' in line
    assert [r['image_id'] for r in _listed(out)] == [images[0]['id']]


# ====================================================== 2. file modes follow the umask
@pytest.mark.parametrize('mask,mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_2_crops_and_json_get_the_umask_mode(tmp_path, mask, mode):
    root, _ = _coco(tmp_path, num_images=2)
    out = tmp_path / 'out'
    with umask(mask):
        assert _run(root, out) == 0
    files = list((out / 'crops' / 'train2017').iterdir())
    files.append(out / 'annotations' / 'train2017.json')
    assert len(files) > 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


# ====================================================== 3. wrongly typed annotation fields
def _set(key, value):
    return lambda ann: ann.__setitem__(key, value)


# case -> (change of one annotation, field named in its report line)
FIELD_CASES = {
    'num_keypoints_str': (_set('num_keypoints', '17'), "num_keypoints '17' is not"),
    'num_keypoints_negative': (_set('num_keypoints', -1), 'num_keypoints'),
    'num_keypoints_fraction': (_set('num_keypoints', 2.5), 'num_keypoints'),
    'keypoints_strings': (_set('keypoints', ['1'] * 51), "keypoints[0] '1' is not"),
    'keypoints_one_string': (_set('keypoints', '10 20 2'), 'keypoints \'10 20 2\' is a str'),
    'keypoints_not_triples': (_set('keypoints', [1.0, 2.0]), 'keypoints has 2 values'),
    'id_list': (_set('id', [1]), 'id [1]'),
    'id_float': (_set('id', 1.5), 'id 1.5'),
    'id_with_slash': (_set('id', 'a/b'), "id 'a/b'"),
    'id_with_underscore': (_set('id', 'a_b'), "id 'a_b'"),
    'bbox_strings': (_set('bbox', ['1', '2', '30', '40']), 'bbox'),
    'bbox_too_long': (_set('bbox', [1, 2, 30, 40, 5]), 'bbox'),
    'bbox_too_short': (_set('bbox', [1, 2, 30]), 'bbox'),
    'missing_image_id': (lambda ann: ann.pop('image_id'), 'missing key "image_id"'),
    'image_id_list': (_set('image_id', [1]), 'image_id [1]'),
    'iscrowd_str': (_set('iscrowd', '0'), 'iscrowd'),
    'category_id_list': (_set('category_id', [1]), 'category_id'),
    'category_id_str': (_set('category_id', '1'), "category_id '1' is a string"),
}


def _name(ann):
    """Report name of an annotation, as the tool writes it."""
    show = crop_tool._show
    ann_id = show(ann['id']) if 'id' in ann else '?'
    image_id = show(ann['image_id']) if 'image_id' in ann else '?'
    return f'annotation {ann_id} (image {image_id})'


@pytest.mark.parametrize('case', list(FIELD_CASES))
def test_3_wrongly_typed_annotation_is_named(tmp_path, capsys, case):
    change, field = FIELD_CASES[case]
    root, coco = _coco(tmp_path, num_images=2)
    anns = coco['annotations']
    victim = anns[0]
    change(victim)
    _save(root, coco)
    out = tmp_path / 'out'
    assert _run(root, out) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert '1 failed entries' in err
    assert field in _line(err, _name(victim) + ':')
    # --skip-bad: skipped, the others listed, exit 0
    assert _run(root, out, '--skip-bad') == 0
    listed = _listed(out)
    assert [r['ann_id'] for r in listed] == [a['id'] for a in anns[1:] if _kept(a)]


def test_3_string_image_id_for_an_integer_image(tmp_path, capsys):
    root, coco = _coco(tmp_path, num_images=2)
    victim = coco['annotations'][0]
    victim['image_id'] = str(victim['image_id'])
    _save(root, coco)
    assert _run(root, tmp_path / 'out') == 1
    line = _line(capsys.readouterr().err, _name(victim) + ':')
    assert f"image_id '{victim['image_id']}' is a string, image entry {victim['image_id']} " \
        'has an integer id' in line


@pytest.mark.parametrize('entry', [[1, 2, 3], 'annotation', 7, None])
def test_3_annotation_that_is_not_an_object(tmp_path, capsys, entry):
    root, coco = _coco(tmp_path, num_images=2)
    n_good = sum(map(_kept, coco['annotations']))
    coco['annotations'].insert(1, entry)
    _save(root, coco)
    out = tmp_path / 'out'
    assert _run(root, out) == 1
    line = _line(capsys.readouterr().err, 'annotation #1:')
    assert f'is a {type(entry).__name__}, not a JSON object' in line
    assert _run(root, out, '--skip-bad') == 0
    assert len(_listed(out)) == n_good


def test_3_image_entry_that_is_not_an_object_or_repeats_an_id(tmp_path, capsys):
    root, coco = _coco(tmp_path, num_images=2)
    coco['images'].insert(0, ['000000000001.jpg'])
    coco['images'].append(dict(coco['images'][1]))  # the first image again
    _save(root, coco)
    out = tmp_path / 'out'
    assert _run(root, out) == 1
    err = capsys.readouterr().err
    assert 'is a list, not a JSON object' in _line(err, 'image entry #0:')
    first = coco['images'][1]
    assert f'id {first["id"]} is used by an earlier image entry too' in err
    # the repeated entry does not drop the first one's boxes
    assert _run(root, out, '--skip-bad') == 0
    assert first['id'] in {r['image_id'] for r in _listed(out)}


def test_3_malformed_categories(tmp_path, capsys):
    root, coco = _coco(tmp_path, num_images=1)
    coco['categories'] = [['person'], dict(id=[1], name='person')] + coco['categories']
    _save(root, coco)
    assert _run(root, tmp_path / 'out') == 0  # odd entries are ignored, person is id 1
    coco['categories'] = {'id': 1}
    _save(root, coco)
    assert _run(root, tmp_path / 'out') == 2
    assert '"categories" is a dict, not a list' in capsys.readouterr().err
