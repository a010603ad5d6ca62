"""Human3.6M for paper Tables 3 (JDR) and 4 (MPJPE), end to end on a tiny synthetic H36M.

tools/misc/make_h36m_fixture.py -> MMPose's preprocess_h36m.py (when spacepy is installed;
otherwise the fixture's copy of its output) and h36m_to_coco.py, run by
tools/dataset_converters/prepare_h36m.py -> our H36M configs, unchanged but for the data root
and a tiny model -> training, JDR (2D) and MPJPE / PA-MPJPE (3D).
"""
import importlib.util
import json
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import liftedcl_mm  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_2D = osp.join(ROOT, 'configs', 'mmpose', 'simplebaseline_res50_h36m-256x256_imagenet.py')
CFG_3D = osp.join(ROOT, 'configs', 'mmpose', 'rle3d_res50_h36m-256x256_imagenet.py')
HAS_SPACEPY = importlib.util.find_spec('spacepy') is not None
NUM_FRAMES = dict(train=80, test=32)  # 5 or 2 subjects x 2 videos x 4 cameras x 2 frames


def _tool(*parts):
    path = osp.join(ROOT, 'tools', *parts)
    spec = importlib.util.spec_from_file_location('tool_' + parts[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixture_tool = _tool('misc', 'make_h36m_fixture.py')
prepare_tool = _tool('dataset_converters', 'prepare_h36m.py')


@pytest.fixture(scope='module')
def h36m(tmp_path_factory):
    """The converters' output for the fixture: ``dict(root=..., fixture=...)``."""
    tmp = tmp_path_factory.mktemp('h36m')
    fixture = tmp / 'fixture'
    fixture_tool.main(['--out', str(fixture), '--layout', 'both' if HAS_SPACEPY else 'processed'])
    out = tmp / 'data'
    if HAS_SPACEPY:  # MMPose's preprocess_h36m.py on the raw download layout
        prepare_tool.main(['--metadata', str(fixture / 'raw' / 'metadata.xml'),
                           '--original', str(fixture / 'raw' / 'original'), '--out', str(out),
                           '--quiet'])
    else:  # only h36m_to_coco.py runs for real
        shutil.copytree(fixture / 'processed', out)
        prepare_tool.main(['--out', str(out), '--skip-preprocess', '--quiet'])
    return dict(root=str(out), fixture=str(fixture))


def _cfg(path, data_root):
    cfg = Config.fromfile(path)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data_root
    return cfg


def _build_dataset(dataset_cfg):
    from mmpose.registry import DATASETS
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmpose'):
        return DATASETS.build(dataset_cfg)


def test_converter_output_is_where_the_configs_read(h36m):
    for path in (CFG_2D, CFG_3D):
        cfg = Config.fromfile(path)
        for split, loader in (('train', cfg.train_dataloader), ('test', cfg.val_dataloader)):
            npz, coco = prepare_tool.annotation_paths('', 5, split)
            expected = coco if path == CFG_2D else npz
            assert loader.dataset.ann_file == expected.lstrip('/')
            assert loader.dataset.data_prefix == dict(img='images/')
            assert osp.isfile(osp.join(h36m['root'], loader.dataset.ann_file))
    assert osp.isfile(osp.join(h36m['root'], Config.fromfile(CFG_3D).train_dataloader.dataset
                               .camera_param_file))
    for split, num in NUM_FRAMES.items():
        npz, coco = prepare_tool.annotation_paths(h36m['root'], 5, split)
        names = np.load(npz)['imgname']
        assert len(names) == num
        assert all(osp.isfile(osp.join(h36m['root'], 'images', n)) for n in names)
        with open(coco) as f:
            assert len(json.load(f)['annotations']) == num


@pytest.mark.skipif(not HAS_SPACEPY, reason='preprocess_h36m.py needs spacepy')
def test_preprocess_output_equals_the_processed_fixture(h36m):
    """MMPose's preprocess_h36m.py on the raw fixture writes what the fallback layout holds."""
    for split in NUM_FRAMES:
        ours = np.load(osp.join(h36m['fixture'], 'processed', 'annotation_body3d', 'fps10',
                                f'h36m_{split}.npz'))
        theirs = np.load(prepare_tool.annotation_paths(h36m['root'], 5, split)[0])
        assert sorted(ours.files) == sorted(theirs.files) == ['S', 'center', 'imgname', 'part',
                                                              'scale']
        assert ours['imgname'].tolist() == theirs['imgname'].tolist()
        for key in ('S', 'center', 'part', 'scale'):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, err_msg=key)
    with open(osp.join(h36m['fixture'], 'processed', 'annotation_body3d', 'cameras.pkl'),
              'rb') as f:
        ours = pickle.load(f)
    with open(osp.join(h36m['root'], 'annotation_body3d', 'cameras.pkl'), 'rb') as f:
        theirs = pickle.load(f)
    assert ours.keys() == theirs.keys()
    for key, cam in theirs.items():
        for field, value in cam.items():
            np.testing.assert_equal(np.asarray(ours[key][field]).shape, np.asarray(value).shape)
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(ours[key][field], value, atol=1e-9)
            else:
                assert ours[key][field] == value


def test_2d_config_reads_the_coco_json(h36m):
    cfg = _cfg(CFG_2D, h36m['root'])
    train = _build_dataset(cfg.train_dataloader.dataset)
    assert len(train) == NUM_FRAMES['train'] // 5  # sample_interval=5, Qiu et al.'s [::5]
    test = _build_dataset(cfg.val_dataloader.dataset)
    assert len(test) == NUM_FRAMES['test']
    npz = np.load(prepare_tool.annotation_paths(h36m['root'], 5, 'test')[0])
    info = test.get_data_info(3)
    assert info['img_path'] == osp.join(h36m['root'], 'images', str(npz['imgname'][3]))
    np.testing.assert_allclose(info['keypoints'][0], npz['part'][3, :, :2], atol=1e-3)
    side = npz['scale'][3] * 200  # h36m_to_coco.py: the square box around the centre
    np.testing.assert_allclose(info['bbox'][0, 2:] - info['bbox'][0, :2], [side, side], atol=1e-3)
    assert test.metainfo['dataset_name'] == 'h36m' and test.metainfo['num_keypoints'] == 17
    sample = test[3]
    assert tuple(sample['inputs'].shape) == (3, 256, 256)


def _tiny_config(folder, base, data_root, body):
    path = folder / ('tiny_' + osp.basename(base))
    path.write_text(f'_base_ = [{base!r}]\ndata_root = {data_root!r}\n' + body)
    return str(path)


TINY_2D = """
codec = dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16), sigma=2)
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    head=dict(in_channels=64, deconv_out_channels=(16, 16, 16), deconv_kernel_sizes=(4, 4, 4),
              decoder=codec))
train_pipeline = [
    dict(type='LoadImage'), dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs')]
val_pipeline = [
    dict(type='LoadImage'), dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='TopdownAffine', input_size=codec['input_size']), dict(type='PackPoseInputs')]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, indices=4, pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
"""

TINY_3D = """
codec = dict(type='RootRelativeUVD', input_size=(64, 64), depth_range=2000., root_index=0)
model = dict(backbone=dict(depth=18, base_channels=8, init_cfg=None),
             head=dict(in_channels=64, decoder=codec))
meta_keys = {{_base_.meta_keys}}
train_pipeline = [
    dict(type='LoadImage'), dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_prob=0, scale_factor=(0.7, 1.3), rotate_factor=30),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs', meta_keys=meta_keys)]
val_pipeline = [
    dict(type='LoadImage'), dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs', meta_keys=meta_keys)]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, indices=12, pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
"""


def _train(h36m, tmp_path_factory, base, body):
    """tools/train.py (in-process) on a tiny variant of ``base``; then its test loop."""
    folder = tmp_path_factory.mktemp('train')
    config = _tiny_config(folder, base, h36m['root'] + '/', body)
    runner = _tool('train.py').main([config, '--work-dir', str(folder / 'work')])
    return dict(config=config, checkpoint=str(folder / 'work' / 'epoch_1.pth'),
                metrics=runner.test())


@pytest.fixture(scope='module')
def trained_2d(h36m, tmp_path_factory):
    return _train(h36m, tmp_path_factory, CFG_2D, TINY_2D)


@pytest.fixture(scope='module')
def trained_3d(h36m, tmp_path_factory):
    return _train(h36m, tmp_path_factory, CFG_3D, TINY_3D)


def test_2d_train_one_iteration_and_jdr(trained_2d):
    metrics = trained_2d['metrics']
    for prefix in ('JDR', 'JDR-headjoints'):
        assert 0 <= metrics[f'{prefix}/mean'] <= 1
        assert all(np.isfinite(metrics[f'{prefix}/{name}']) for name in ('root', 'head', 'all'))
    assert np.isfinite(metrics['EPE'])
    assert osp.isfile(trained_2d['checkpoint'])


def test_3d_dataset_frames_boxes_and_units(h36m):
    cfg = _cfg(CFG_3D, h36m['root'])
    test = _build_dataset(cfg.val_dataloader.dataset)
    assert len(test) == NUM_FRAMES['test']
    npz = np.load(prepare_tool.annotation_paths(h36m['root'], 5, 'test')[0])
    cfg.val_dataloader.dataset.frame_step = 2
    thinned = _build_dataset(cfg.val_dataloader.dataset)
    assert len(thinned) == NUM_FRAMES['test'] // 2  # 2 frames per video -> 1
    for dataset in (test, thinned):
        for idx in range(len(dataset)):
            info = dataset.get_data_info(idx)
            frame = info['img_id']
            assert info['img_path'] == osp.join(h36m['root'], 'images', str(npz['imgname'][frame]))
            assert osp.isfile(info['img_path'])
            # the box of this very frame (not of sample idx), a square of side scale * 200
            np.testing.assert_allclose((info['bbox'][0, :2] + info['bbox'][0, 2:]) / 2,
                                       npz['center'][frame], atol=1e-3)
            np.testing.assert_allclose(info['bbox'][0, 2:] - info['bbox'][0, :2],
                                       [npz['scale'][frame] * 200] * 2, rtol=1e-5)
            np.testing.assert_allclose(info['lifting_target'][0], npz['S'][frame, :, :3] * 1000,
                                       rtol=1e-5)  # mm
            np.testing.assert_allclose(info['keypoints'][0], npz['part'][frame, :, :2], atol=1e-3)
    with pytest.raises(ValueError, match='seq_len'):
        _build_dataset(dict(cfg.val_dataloader.dataset, seq_len=27))
    with pytest.raises(ValueError, match='frame_step'):
        _build_dataset(dict(cfg.val_dataloader.dataset, subset_frac=0.5))


def test_3d_flipped_labels_mirror_the_unflipped(h36m):
    """RandomFlip mirrors (u, v) and relabels left/right; the codec relabels the depths alike."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    cfg = _cfg(CFG_3D, h36m['root'])
    labels = []
    for prob in (0.0, 1.0):
        pipeline = [dict(t) for t in cfg.val_dataloader.dataset.pipeline]
        pipeline.insert(2, dict(type='RandomFlip', direction='horizontal', prob=prob))
        dataset = _build_dataset(dict(cfg.val_dataloader.dataset, pipeline=pipeline))
        labels.append(dataset[5]['data_samples'].gt_instance_labels.keypoint_labels[0].numpy())
    plain, flipped = labels
    flip = parse_pose_metainfo(dict(from_file='configs/_base_/datasets/h36m.py'))['flip_indices']
    # MMPose mirrors keypoints as x -> w - 1 - x but boxes as x -> w - x: <= 1 frame px apart
    np.testing.assert_allclose(flipped[:, 0], -plain[flip, 0], atol=0.02)
    np.testing.assert_allclose(flipped[:, 1:], plain[flip, 1:], atol=1e-5)


def test_3d_exact_prediction_scores_zero_mpjpe(h36m, monkeypatch):
    """Pipeline + head geometry: a head that outputs the codec's labels gives MPJPE ~ 0."""
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import METRICS, MODELS
    cfg = _cfg(CFG_3D, h36m['root'])
    cfg.model.backbone = dict(type='ResNet', depth=18, base_channels=8)
    cfg.model.head.in_channels = 64
    dataset = _build_dataset(cfg.val_dataloader.dataset)
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(cfg.model)
        metrics = [METRICS.build(m) for m in cfg.val_evaluator]
    model.eval()
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    labels = torch.cat([s.gt_instance_labels.keypoint_labels for s in batch['data_samples']])
    monkeypatch.setattr(model.head, 'forward', lambda feats: (labels, None))
    with torch.no_grad():
        outputs = model.test_step(batch)
    for metric in metrics:
        metric.dataset_meta = dataset.metainfo
        metric.process(batch, [o.to_dict() for o in outputs])
    mpjpe = metrics[0].evaluate(len(dataset))['MPJPE']
    pa_mpjpe = metrics[1].evaluate(len(dataset))['P-MPJPE']
    assert mpjpe < 0.5 and pa_mpjpe < 0.5  # mm; labels are float32


def test_3d_train_and_mpjpe(trained_3d):
    metrics = trained_3d['metrics']
    assert np.isfinite(metrics['MPJPE']) and np.isfinite(metrics['P-MPJPE'])
    assert 0 < metrics['P-MPJPE'] <= metrics['MPJPE'] + 1e-6 < 5000  # mm


# MMPose's H36M metainfo holds an empty array (sigmas=[]), pickled by numpy with builtins.bytes:
# the safe loader must allow it, or tools/test.py and --resume refuse every H36M checkpoint.
@pytest.mark.parametrize('trained', ['trained_2d', 'trained_3d'])
def test_tools_test_py_evaluates_h36m_checkpoints(trained, request):
    run = request.getfixturevalue(trained)
    metrics = _tool('test.py').main([run['config'], run['checkpoint'], '--work-dir',
                                     osp.join(osp.dirname(run['checkpoint']), 'test')])
    assert metrics == pytest.approx(run['metrics'])


def test_prepare_names_frames_the_converter_dropped(h36m, tmp_path):
    out = tmp_path / 'data'
    shutil.copytree(h36m['root'], out, ignore=shutil.ignore_patterns('extracted', 'annotations'))
    name = str(np.load(prepare_tool.annotation_paths(str(out), 5, 'train')[0])['imgname'][7])
    (out / 'images' / name).unlink()
    with pytest.raises(SystemExit, match=osp.basename(name)):
        prepare_tool.main(['--out', str(out), '--skip-preprocess', '--quiet'])
    with pytest.raises(SystemExit, match='--metadata and --original'):
        prepare_tool.main(['--out', str(out)])


def test_fixture_is_deterministic(tmp_path):
    for run in ('a', 'b'):
        fixture_tool.main(['--out', str(tmp_path / run), '--layout', 'processed', '--frames', '5'])
    a, b = (np.load(tmp_path / r / 'processed' / 'annotation_body3d' / 'fps10' / 'h36m_test.npz')
            for r in 'ab')
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    name = str(a['imgname'][0])
    assert (tmp_path / 'a' / 'processed' / 'images' / name).read_bytes() == \
        (tmp_path / 'b' / 'processed' / 'images' / name).read_bytes()
