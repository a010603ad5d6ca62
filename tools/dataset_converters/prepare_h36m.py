"""Prepare Human3.6M for the paper's Table 3/4 configs with MMPose's own converters.

Runs, from the installed MMPose (``mmpose/.mim/tools/dataset_converters``), unchanged:

1. ``preprocess_h36m.py``: extracts the downloaded archives, samples every ``--sample-rate``-th
   frame (5: 10 fps), writes the frames and the 2D/3D annotations (npz) and ``cameras.pkl``;
2. ``h36m_to_coco.py`` on the train and test npz: COCO-format keypoint json for the 2D configs.

Example (the downloaded ``.tgz`` files in ``data/h36m/original/s1/``, ``s5/``, ... as MMPose
expects them, ``metadata.xml`` from the H36M site or h36m-fetch)::

    python tools/dataset_converters/prepare_h36m.py --metadata data/h36m/metadata.xml \\
        --original data/h36m/original --out data/h36m

writes (the layout ``configs/mmpose/*h36m*`` read)::

    data/h36m/images/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg ...
    data/h36m/annotation_body3d/cameras.pkl
    data/h36m/annotation_body3d/fps10/h36m_{train,test}.npz      (3D configs; + *_stats.pkl)
    data/h36m/annotations/h36m_{train,test}.json                  (2D configs, COCO format)
    data/h36m/extracted/  (the unpacked archives; --extracted to put them elsewhere)

``--skip-preprocess`` runs step 2 only, on an existing ``--out``. ``preprocess_h36m.py`` needs
``spacepy`` (``pip install spacepy``; its wheels bundle the NASA CDF library). Two things are
done around MMPose's scripts: ``annotation_body3d/`` is created first (``preprocess_h36m.py``
writes ``cameras.pkl`` there before creating it), and the json files are checked against the
npz afterwards (``h36m_to_coco.py`` silently drops frames whose image it cannot open).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np

SPLITS = ('train', 'test')


def converter_dir() -> str:
    """MMPose's dataset converters shipped in the installed package (``.mim``)."""
    import mmpose
    path = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', 'dataset_converters')
    for name in ('preprocess_h36m.py', 'h36m_to_coco.py'):
        if not osp.isfile(osp.join(path, name)):
            raise FileNotFoundError(
                f'{name} not found in {path}: this needs MMPose (>= 1.0) installed with its '
                '.mim tools (pip install mmpose)')
    return path


def annotation_paths(out: str, sample_rate: int, split: str):
    """``(npz, json)`` of a split under ``out``."""
    npz = osp.join(out, 'annotation_body3d', f'fps{50 // sample_rate}', f'h36m_{split}.npz')
    return npz, osp.join(out, 'annotations', f'h36m_{split}.json')


def _run(cmd, quiet: bool) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.STDOUT if quiet else None, text=True)
    if proc.returncode != 0:
        tail = ('\n' + proc.stdout[-3000:]) if quiet and proc.stdout else ''
        raise RuntimeError(f'{osp.basename(cmd[1])} failed (exit {proc.returncode}){tail}')


def preprocess(metadata: str, original: str, out: str, extracted: str, sample_rate: int,
               quiet: bool = False) -> None:
    """Step 1: MMPose's ``preprocess_h36m.py`` with ``--processed out``."""
    if importlib.util.find_spec('spacepy') is None:
        raise RuntimeError('preprocess_h36m.py reads the H36M pose files with spacepy: '
                           'pip install spacepy (its wheels bundle the NASA CDF library)')
    for path, what in ((metadata, '--metadata'), (original, '--original')):
        if not osp.exists(path):
            raise FileNotFoundError(f'{what} "{path}" does not exist')
    # preprocess_h36m.py writes cameras.pkl into this folder before it creates it
    os.makedirs(osp.join(out, 'annotation_body3d'), exist_ok=True)
    _run([sys.executable, osp.join(converter_dir(), 'preprocess_h36m.py'),
          '--metadata', metadata, '--original', original, '--extracted', extracted,
          '--processed', out, '--sample-rate', str(sample_rate)], quiet)


def to_coco(out: str, sample_rate: int, quiet: bool = False) -> dict:
    """Step 2: MMPose's ``h36m_to_coco.py`` per split; returns ``{split: num annotations}``.

    Raises:
        RuntimeError: if the json holds fewer frames than the npz (unreadable images), naming
            some of the missing ones.
    """
    cameras = osp.join(out, 'annotation_body3d', 'cameras.pkl')
    counts = {}
    for split in SPLITS:
        npz, out_json = annotation_paths(out, sample_rate, split)
        for path in (npz, cameras):
            if not osp.isfile(path):
                raise FileNotFoundError(f'"{path}" does not exist: run the preprocessing first '
                                        '(without --skip-preprocess) or check --sample-rate')
        os.makedirs(osp.dirname(out_json), exist_ok=True)
        _run([sys.executable, osp.join(converter_dir(), 'h36m_to_coco.py'),
              '--ann-file', npz, '--camera-param-file', cameras,
              '--img-root', osp.join(out, 'images'), '--out-file', out_json,
              '--full-img-name'], quiet)
        names = [str(n) for n in np.load(npz)['imgname']]
        with open(out_json) as f:
            coco = json.load(f)
        kept = {img['file_name'] for img in coco['images']}
        missing = [n for n in names if n not in kept]
        if missing or len(coco['annotations']) != len(names):
            raise RuntimeError(
                f'{out_json}: {len(coco["annotations"])} annotations for {len(names)} frames in '
                f'{npz}; h36m_to_coco.py could not read {len(missing)} images under '
                f'{osp.join(out, "images")}, e.g. {missing[:3]}')
        counts[split] = len(names)
    return counts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Prepare Human3.6M with MMPose\'s converters '
                                     '(preprocess_h36m.py, then h36m_to_coco.py)')
    parser.add_argument('--metadata', help='metadata.xml of Human3.6M')
    parser.add_argument('--original', help='folder of the downloaded archives: s1/Videos.tgz, '
                        's1/D2_Positions.tgz, s1/D3_Positions_mono.tgz, s5/...')
    parser.add_argument('--out', default='data/h36m', help='output root (default: data/h36m)')
    parser.add_argument('--extracted', help='where to unpack the archives '
                        '(default: <out>/extracted)')
    parser.add_argument('--sample-rate', type=int, default=5,
                        help='keep every n-th 50 fps frame (default 5: 10 fps, fps10/)')
    parser.add_argument('--skip-preprocess', action='store_true',
                        help='only run h36m_to_coco.py on an existing --out')
    parser.add_argument('--quiet', action='store_true', help='hide the converters\' output '
                        'unless they fail')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.sample_rate < 1 or args.sample_rate > 50:
            raise ValueError('--sample-rate must be in [1, 50]')
        if not args.skip_preprocess:
            if not args.metadata or not args.original:
                raise ValueError('--metadata and --original are needed (or --skip-preprocess)')
            preprocess(args.metadata, args.original, args.out,
                       args.extracted or osp.join(args.out, 'extracted'), args.sample_rate,
                       args.quiet)
        counts = to_coco(args.out, args.sample_rate, args.quiet)
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        sys.exit(f'error: {err}')
    for split, num in counts.items():
        npz, out_json = annotation_paths(args.out, args.sample_rate, split)
        print(f'{split}: {num} frames -> {out_json} (2D configs), {npz} (3D configs)')
    return counts


if __name__ == '__main__':
    main()
