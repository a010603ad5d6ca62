"""Benchmark data-pipeline throughput: our two-view pipeline with geometry vs MMPretrain MoCo v2.

Both pipelines load and augment the same 200 person crops (the demo crops of
``data/demo/coco_human``, cycled; or ``--data-root``) through a ``DataLoader`` with 2 worker
processes, ``default_collate`` and batch 32:

- ours: ``train_pipeline`` of ``configs/_base_/datasets/coco_human_crops.py``
  (``LoadImageWithCheck``, ``MultiViewWithGeometry`` of RandomResizedCrop/ColorJitter/
  RandomGrayscale/GaussianBlur/Flip with geometry, ``PackViewsWithGeometry``);
- peer: ``train_pipeline`` of MMPretrain's ``mocov2_resnet50_8xb32-coslr-200e_in1k.py``
  (``LoadImageFromFile``, ``MultiView`` of the same augmentations with the same parameters,
  ``PackInputs``), with its crop size set to ours (256x256);
- peer, same backend: the same MMPretrain pipeline with its RandomResizedCrop backend set to
  ours (the shipped config resizes with pillow), which isolates the cost of recording geometry.

Each loader first runs one untimed epoch (worker start-up, caches); then timed epochs alternate
(ours, peer, ours, peer, ...) and the best epoch of each counts.

    python tools/benchmarks/bench_pipeline.py [--quick] [--json OUT] [--data-root DIR]
"""
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCHMARK = 'pipeline'
FULL = dict(num_images=200, view_size=256, batch=32, workers=2, rounds=5)
QUICK = dict(num_images=16, view_size=64, batch=8, workers=2, rounds=1)
OUR_CONFIG = 'configs/_base_/datasets/coco_human_crops.py'
DEMO_ROOT = 'data/demo/coco_human/'


def _set_crop(pipeline, crop_types, **fields) -> int:
    """Update every crop transform (nested in multi-view pipelines) with ``fields``; count."""
    count = 0
    for t in pipeline:
        if isinstance(t, dict):
            if t.get('type') in crop_types:
                t.update(fields)
                count += 1
            for value in t.values():
                if isinstance(value, list):
                    count += _set_crop(value, crop_types, **fields)
        elif isinstance(t, list):
            count += _set_crop(t, crop_types, **fields)
    return count


def build_pipelines(cfg: dict):
    """Pipelines (callables on a data-info dict) and their configs, by name."""
    benchlib.require('liftedcl_mm.datasets.transforms', None, 'the geometry transforms (helper B)')
    for name in ('MultiViewWithGeometry', 'PackViewsWithGeometry',
                 'RandomResizedCropWithGeometry', 'RandomFlipWithGeometry'):
        benchlib.require('liftedcl_mm.datasets.transforms', name,
                         f'the transform {name} (helper B)')
    import mmpretrain
    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmpretrain.registry import TRANSFORMS as PEER_TRANSFORMS

    from liftedcl_mm.registry import TRANSFORMS
    from liftedcl_mm.utils import register_all_modules
    register_all_modules()

    ours_cfg = Config.fromfile(str(benchlib.require_file(
        benchlib.REPO / OUR_CONFIG, 'our dataset config (helper B)')))
    ours = copy.deepcopy(ours_cfg.to_dict()['train_pipeline'])
    if _set_crop(ours, ('RandomResizedCropWithGeometry', ), scale=cfg['view_size']) != 1:
        raise benchlib.BenchmarkError(f'expected one RandomResizedCropWithGeometry in {OUR_CONFIG}')

    peer_path = (Path(mmpretrain.__file__).parent / '.mim' / 'configs' / 'mocov2' /
                 'mocov2_resnet50_8xb32-coslr-200e_in1k.py')
    peer = copy.deepcopy(Config.fromfile(str(peer_path)).to_dict()['train_pipeline'])
    if _set_crop(peer, ('RandomResizedCrop', ), scale=cfg['view_size']) != 1:
        raise benchlib.BenchmarkError(f'expected one RandomResizedCrop in {peer_path}')
    peer_same = copy.deepcopy(peer)
    _set_crop(peer_same, ('RandomResizedCrop', ), backend=_crop_backend(ours))
    configs = dict(ours=ours, peer=peer, peer_same_backend=peer_same)
    pipes = dict(ours=Compose([TRANSFORMS.build(t) for t in ours]),
                 peer=Compose([PEER_TRANSFORMS.build(t) for t in peer]),
                 peer_same_backend=Compose([PEER_TRANSFORMS.build(t) for t in peer_same]))
    return pipes, configs, str(peer_path)


def data_infos(num: int, data_root: str):
    """``num`` data-info dicts of the crops under ``data_root`` (cycled when fewer)."""
    ds_cls = benchlib.require('liftedcl_mm.datasets', 'COCOHumanCropDataset',
                              'the crop dataset (helper B)')
    root = Path(data_root)
    if not root.is_absolute():
        root = benchlib.REPO / root
    dataset = ds_cls(data_root=str(root), ann_file='annotations/train2017.json',
                     data_prefix=dict(img_path='crops/train2017/'), pipeline=[])
    base = [dataset.get_data_info(i) for i in range(len(dataset))]
    return [copy.deepcopy(base[i % len(base)]) for i in range(num)], len(base)


class PipelineDataset:
    """Map-style dataset applying ``pipeline`` to a copy of each data-info dict."""

    def __init__(self, infos, pipeline):
        self.infos = infos
        self.pipeline = pipeline

    def __len__(self):
        return len(self.infos)

    def __getitem__(self, idx):
        return self.pipeline(copy.deepcopy(self.infos[idx]))


def main() -> None:
    parser = benchlib.base_parser(__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=DEMO_ROOT,
                        help=f'prepared crops (annotations/train2017.json, crops/train2017/); '
                        f'default {DEMO_ROOT}')
    args = benchlib.parse_args(parser)
    started = time.time()
    cfg = QUICK if args.quick else FULL
    pipes, pipe_cfgs, peer_path = build_pipelines(cfg)
    infos, num_distinct = data_infos(cfg['num_images'], args.data_root)

    import torch
    from mmengine.dataset import default_collate
    from torch.utils.data import DataLoader
    torch.set_num_threads(args.threads)

    def loader(pipe):
        return DataLoader(PipelineDataset(infos, pipe), batch_size=cfg['batch'], shuffle=False,
                          num_workers=cfg['workers'], collate_fn=default_collate,
                          persistent_workers=True, drop_last=False)

    def epoch(dl) -> float:
        start = time.perf_counter()
        seen = 0
        for batch in dl:
            seen += len(batch['data_samples'])
        if seen != len(infos):
            raise benchlib.BenchmarkError(f'a loader gave {seen} images, expected {len(infos)}')
        return time.perf_counter() - start

    loaders = {name: loader(pipe) for name, pipe in pipes.items()}
    first = next(iter(loaders['ours']))
    if 'view_bboxes' not in first['data_samples'][0]:
        raise benchlib.BenchmarkError('our pipeline lost view_bboxes')
    for dl in loaders.values():  # warm-up: worker start-up and first-touch costs
        epoch(dl)
    times = {name: [] for name in loaders}
    for _ in range(cfg['rounds']):
        for name in loaders:
            times[name].append(epoch(loaders[name]))
    del loaders

    rate = {name: len(infos) / min(t) for name, t in times.items()}
    size = cfg['view_size']
    ours_backend = _crop_backend(pipe_cfgs['ours'])
    figures = []
    for name, label in (('peer', 'MMPretrain MoCo v2 pipeline'),
                        ('peer_same_backend', 'same, crop backend as ours')):
        backend = _crop_backend(pipe_cfgs[name])
        figures.append(benchlib.figure(
            f"pipeline throughput (2 views {size}x{size}, {cfg['workers']} workers)"
            + ('' if name == 'peer' else f', peer resizes with {backend}'),
            rate['ours'], 'img/s', peer=label, peer_value=rate[name],
            ratio=rate['ours'] / rate[name], ratio_def='ours / peer', target_op='>=',
            threshold=0.95,
            note=f"{len(infos)} crops ({num_distinct} distinct, cycled) from {args.data_root}; "
            f"best of {cfg['rounds']} alternating epochs after a warm-up epoch; peer "
            f"RandomResizedCrop backend={backend!r}"
            + (" (MMPretrain's config as shipped)" if name == 'peer' else '')
            + f', ours backend={ours_backend!r}'))
    details = dict(config=cfg, seconds=times, peer_config=peer_path, pipelines=pipe_cfgs,
                   data_root=args.data_root)
    benchlib.finish(BENCHMARK, args, figures, details, started)


def _crop_backend(pipeline) -> str:
    for t in pipeline:
        if isinstance(t, dict):
            if 'RandomResizedCrop' in str(t.get('type')):
                return t.get('backend', 'cv2')
            for value in t.values():
                if isinstance(value, list):
                    found = _crop_backend(value)
                    if found:
                        return found
        elif isinstance(t, list):
            found = _crop_backend(t)
            if found:
                return found
    return ''


if __name__ == '__main__':
    benchlib.main_guard(main)
