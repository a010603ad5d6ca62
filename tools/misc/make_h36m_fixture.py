"""Generate a tiny synthetic Human3.6M in the layouts MMPose's H36M converters read and write.

Examples::

    python tools/misc/make_h36m_fixture.py --out /tmp/h36m_fixture             # both layouts
    python tools/misc/make_h36m_fixture.py --out /tmp/h36m_fixture --layout processed

``raw`` is what ``preprocess_h36m.py`` (MMPose's ``.mim/tools/dataset_converters``) *reads*, so
tests run MMPose's converter for real (writing the CDF pose files needs ``spacepy``)::

    <out>/raw/metadata.xml                    mapping, action names, camera ids, w0 parameters
    <out>/raw/original/s1/Videos.tgz          S1/Videos/Directions 1.54138969.mp4, ...
    <out>/raw/original/s1/D2_Positions.tgz    S1/MyPoseFeatures/D2_Positions/<video>.cdf
    <out>/raw/original/s1/D3_Positions_mono.tgz   ..., for S1, S5, S6, S7, S8, S9, S11

``processed`` is what that script *writes* (for machines without ``spacepy``; then only
``h36m_to_coco.py`` runs for real)::

    <out>/processed/images/S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg
    <out>/processed/annotation_body3d/cameras.pkl
    <out>/processed/annotation_body3d/fps<50 // sample_rate>/h36m_{train,test}.npz

Every subject performs action 2 ("Directions", sub-actions 1 and 2) in front of the four H36M
cameras. A frame is one skeleton of the kinematic prior (``sample_skeletons``, MMPose's H36M-17
order) scaled to ~1.7 m, turned to each camera and placed 4.5-5.5 m in front of it; the 2D
joints are its pinhole projection with the camera's intrinsics in ``w0`` (no distortion), the
3D joints (``D3_Positions_mono``) the camera-space positions in mm, and the frame a stick figure
drawn at the 2D joints (left limbs blue, right limbs red) on a noisy background. The 17 joints
sit at H36M's 32-joint slots that ``preprocess_h36m.py`` keeps; the other 15 copy their parent.
Extrinsics in ``w0`` are arbitrary (only ``h36m_to_coco.py``'s world coordinates use them). The
output depends only on the arguments.
"""
import argparse
import gzip
import io
import os
import os.path as osp
import pickle
import shutil
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.skeleton_prior import sample_skeletons  # noqa: E402
from liftedcl_mm.skeleton.h36m import H36M_BONES  # noqa: E402

SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')  # the annotated ones
ALL_SUBJECTS = tuple(f'S{i}' for i in range(1, 12))  # metadata lists all eleven
CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
# (action id, sub-action id) -> video name prefix; action 1 ("_ALL") is skipped by MMPose
SEQUENCES = {('1', '1'): '_ALL 1', ('2', '1'): 'Directions 1', ('2', '2'): 'Directions'}
ACTION_NAMES = ('_ALL', 'Directions')
# H36M's 32-joint slots of MMPose's 17 joints (preprocess_h36m.py's movable_joints)
H36M32_SLOTS = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# cameras.pkl's w/h: preprocess_h36m.py writes the real H36M frame sizes whatever the videos hold
CONVERTER_FRAME_SIZES = {'54138969': dict(w=1000, h=1002), '55011271': dict(w=1000, h=1000),
                         '58860488': dict(w=1000, h=1000), '60457274': dict(w=1000, h=1002)}
SPLITS = {'train': ('S1', 'S5', 'S6', 'S7', 'S8'), 'test': ('S9', 'S11')}
LEFT = {4, 5, 6, 11, 12, 13}
RIGHT = {1, 2, 3, 14, 15, 16}
SKELETON_SCALE = 2400.  # unit-norm prior skeleton -> mm (about 1.7 m tall)
PERSON_SCALE = 1.2  # preprocess_h36m.py's box: 1.2 x the 2D extent


def camera_intrinsics(cam: int, size: int) -> dict:
    """Pinhole intrinsics of camera ``cam`` (0-3) for ``size`` x ``size`` frames."""
    focal = size * (1.55 + 0.05 * cam)
    return dict(f=np.array([focal, focal * 1.01]),
                c=np.array([size / 2 + cam - 1.5, size / 2 - cam + 1.5]))


def make_w0(size: int) -> np.ndarray:
    """The 300 camera numbers of metadata.xml: 6 extrinsics per (camera, subject), then
    f, c, k, p (9) per camera, in the order ``preprocess_h36m.py`` slices them."""
    extrinsics = []
    for cam in range(4):
        for subject in range(11):
            yaw = 0.5 * np.pi * cam + 0.01 * subject
            extrinsics += [1.5 + 0.01 * cam, 0.1 * cam, yaw,
                           5000. * np.cos(yaw), 5000. * np.sin(yaw), 1500. + 10. * subject]
    intrinsics = []
    for cam in range(4):
        intr = camera_intrinsics(cam, size)
        intrinsics += list(intr['f']) + list(intr['c']) + [0.] * 5  # no distortion
    return np.array(extrinsics + intrinsics, dtype=np.float64)


def write_metadata(path: str, size: int) -> None:
    """metadata.xml with the elements ``PreprocessH36m._load_metadata`` reads."""
    root = ET.Element('metadata')
    mapping = ET.SubElement(root, 'mapping')
    rows = [['', ''] + list(ALL_SUBJECTS)]
    rows += [[a, s] + [name] * len(ALL_SUBJECTS) for (a, s), name in SEQUENCES.items()]
    for row in rows:
        tr = ET.SubElement(mapping, 'tr')
        for cell in row:
            ET.SubElement(tr, 'td').text = cell or None
    names = ET.SubElement(root, 'actionnames')
    for name in ACTION_NAMES:
        ET.SubElement(names, 'an').text = name
    index2id = ET.SubElement(ET.SubElement(root, 'dbcameras'), 'index2id')
    for cam_id in CAMERA_IDS:
        ET.SubElement(index2id, 'id').text = cam_id
    ET.SubElement(root, 'w0').text = '[' + ' '.join(f'{v:.10g}' for v in make_w0(size)) + ']'
    ET.ElementTree(root).write(path, encoding='utf-8', xml_declaration=True)


def make_sequence(seq_index: int, num_frames: int, size: int, seed: int):
    """The frames of one (subject, action, sub-action) in the four cameras.

    Returns:
        list: per camera ``(images (T, size, size, 3) uint8, kps2d (T, 32, 2), kps3d (T, 32, 3))``
        with 2D joints in pixels and 3D joints in camera space, mm.
    """
    rng = np.random.default_rng([seed, seq_index])
    body = sample_skeletons(num_frames, seed=int(rng.integers(2**31))) * SKELETON_SCALE
    out = []
    for cam in range(4):
        intr = camera_intrinsics(cam, size)
        yaw = np.deg2rad(90. * cam + rng.uniform(-20, 20))
        rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        turned = body @ rot.T
        # body frame (right +X, forward +Y, up +Z) seen from the front -> camera (x right,
        # y down, z forward): a proper rotation, so left stays left
        cam_xyz = np.stack([-turned[..., 0], -turned[..., 2], -turned[..., 1]], axis=-1)
        offset = np.stack([rng.uniform(-250, 250, num_frames), rng.uniform(-100, 150, num_frames),
                           rng.uniform(4500, 5500, num_frames)], axis=-1)
        cam_xyz = cam_xyz + offset[:, None]
        uv = cam_xyz[..., :2] / cam_xyz[..., 2:] * intr['f'] + intr['c']
        background = rng.integers(40, 90, (size, size, 3)).astype(np.uint8)
        images = np.stack([draw_figure(background, p) for p in uv])
        out.append((images, to_h36m32(uv), to_h36m32(cam_xyz)))
    return out


def draw_figure(background: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """A stick figure at the (17, 2) joints: left limbs blue, right limbs red, trunk green (BGR)."""
    img = background.copy()
    thick = max(2, img.shape[0] // 64)
    for parent, child in H36M_BONES:
        color = (230, 120, 40) if child in LEFT else (40, 60, 230) if child in RIGHT else \
            (60, 200, 60)
        p, q = (tuple(int(round(v)) for v in joints[j]) for j in (parent, child))
        cv2.line(img, p, q, color, thick, cv2.LINE_AA)
    head = tuple(int(round(v)) for v in joints[10])
    cv2.circle(img, head, max(3, img.shape[0] // 32), (200, 200, 200), -1, cv2.LINE_AA)
    return img


def to_h36m32(joints17: np.ndarray) -> np.ndarray:
    """(T, 17, D) -> (T, 32, D): MMPose's joints at their H36M slots, other slots at the root."""
    out = np.repeat(joints17[:, :1], 32, axis=1).copy()
    out[:, list(H36M32_SLOTS)] = joints17
    return out


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed metadata: same bytes per run
    tar.addfile(info, io.BytesIO(data))


def _write_tgz(path: str, files: dict) -> None:
    # gzip with mtime 0 and no file name: identical archives for identical content
    with open(path, 'wb') as raw, \
            gzip.GzipFile(fileobj=raw, mode='wb', mtime=0, filename='') as gz, \
            tarfile.open(fileobj=gz, mode='w') as tar:
        for name in sorted(files):
            _add_file(tar, name, files[name])


def _video_bytes(images: np.ndarray, tmp: str) -> bytes:
    path = osp.join(tmp, 'video.mp4')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 50,
                             (images.shape[2], images.shape[1]))
    if not writer.isOpened():
        raise RuntimeError('OpenCV cannot write mp4 (mp4v) videos here')
    for img in images:
        writer.write(img)
    writer.release()
    with open(path, 'rb') as f:
        return f.read()


def _cdf_bytes(pose: np.ndarray, tmp: str) -> bytes:
    """A CDF file holding ``Pose`` (1, T, 32 * D), as in H36M's pose archives."""
    from spacepy import pycdf
    path = osp.join(tmp, 'pose.cdf')
    if osp.exists(path):
        os.remove(path)
    with pycdf.CDF(path, '') as cdf:
        cdf['Pose'] = pose.reshape(1, pose.shape[0], -1)
    with open(path, 'rb') as f:
        return f.read()


def _video_name(seq: str, camera_id: str) -> str:
    return f'{seq}.{camera_id}'


def _annotated_sequences():
    """(index, subject, sequence name) of the sequences MMPose extracts (action 1 is skipped)."""
    index = 0
    for subject in SUBJECTS:
        for (action, _), seq in SEQUENCES.items():
            if action == '1':
                continue
            yield index, subject, seq
            index += 1


def write_raw(out: str, num_frames: int, size: int, seed: int) -> None:
    """The download layout ``preprocess_h36m.py`` extracts and reads."""
    os.makedirs(out, exist_ok=True)
    write_metadata(osp.join(out, 'metadata.xml'), size)
    archives = {s: dict(Videos={}, D2_Positions={}, D3_Positions_mono={}) for s in SUBJECTS}
    with tempfile.TemporaryDirectory() as tmp:
        for index, subject, seq in _annotated_sequences():
            for cam, (images, kps2d, kps3d) in enumerate(
                    make_sequence(index, num_frames, size, seed)):
                name = _video_name(seq, CAMERA_IDS[cam])
                files = archives[subject]
                files['Videos'][f'{subject}/Videos/{name}.mp4'] = _video_bytes(images, tmp)
                files['D2_Positions'][f'{subject}/MyPoseFeatures/D2_Positions/{name}.cdf'] = \
                    _cdf_bytes(kps2d, tmp)
                files['D3_Positions_mono'][
                    f'{subject}/MyPoseFeatures/D3_Positions_mono/{name}.cdf'] = \
                    _cdf_bytes(kps3d, tmp)
    for subject, kinds in archives.items():
        folder = osp.join(out, 'original', subject.lower())
        os.makedirs(folder, exist_ok=True)
        for kind, files in kinds.items():
            _write_tgz(osp.join(folder, f'{kind}.tgz'), files)


def write_processed(out: str, num_frames: int, size: int, seed: int, sample_rate: int) -> None:
    """What ``preprocess_h36m.py`` writes from the raw layout (same names, arrays, units),
    except that frames are not round-tripped through a video codec."""
    ann_dir = osp.join(out, 'annotation_body3d')
    os.makedirs(osp.join(ann_dir, f'fps{50 // sample_rate}'), exist_ok=True)
    samples = {split: dict(imgname=[], center=[], scale=[], part=[], S=[]) for split in SPLITS}
    for index, subject, seq in _annotated_sequences():
        split = next(k for k, v in SPLITS.items() if subject in v)
        for cam, (images, kps2d, kps3d) in enumerate(make_sequence(index, num_frames, size, seed)):
            sub_base = f'{subject}_{_video_name(seq, CAMERA_IDS[cam])}'.replace(' ', '_')
            os.makedirs(osp.join(out, 'images', subject, sub_base), exist_ok=True)
            for i in range(0, num_frames, sample_rate):
                name = f'{subject}/{sub_base}/{sub_base}_{i + 1:06d}.jpg'
                cv2.imwrite(osp.join(out, 'images', name), images[i])
                part = kps2d[i, list(H36M32_SLOTS)]
                lo, hi = part.min(0), part.max(0)
                rec = samples[split]
                rec['imgname'].append(name)
                rec['center'].append((lo + hi) / 2)
                rec['scale'].append(PERSON_SCALE * (hi - lo).max() / 200)
                rec['part'].append(np.concatenate([part, np.ones((17, 1))], 1))
                rec['S'].append(np.concatenate(
                    [kps3d[i, list(H36M32_SLOTS)] / 1000., np.ones((17, 1))], 1))
    for split, rec in samples.items():
        np.savez(osp.join(ann_dir, f'fps{50 // sample_rate}', f'h36m_{split}.npz'),
                 **{k: np.array(v) for k, v in rec.items()})
    cameras = {}
    w0 = make_w0(size)
    for subject in range(1, 12):
        for cam in range(4):
            intr = camera_intrinsics(cam, size)
            start = 6 * (cam * 11 + subject - 1)
            cameras[(f'S{subject}', CAMERA_IDS[cam])] = dict(
                R=_extrinsic_rotation(w0[start:start + 3]), T=w0[start + 3:start + 6].reshape(
                    3, 1) * 0.001, c=intr['c'].reshape(2, 1), f=intr['f'].reshape(2, 1),
                k=np.zeros((3, 1)), p=np.zeros((2, 1)), **CONVERTER_FRAME_SIZES[CAMERA_IDS[cam]],
                name=f'camera{cam + 1}', id=CAMERA_IDS[cam])
    with open(osp.join(ann_dir, 'cameras.pkl'), 'wb') as f:
        pickle.dump(cameras, f)


def _extrinsic_rotation(angles: np.ndarray) -> np.ndarray:
    """The rotation ``preprocess_h36m.py`` derives from w0's three angles (its convention)."""
    x, y, z = -angles[0], angles[1], -angles[2]
    rx = np.array([[1, 0, 0], [0, np.cos(x), np.sin(x)], [0, -np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(z), np.sin(z), 0], [-np.sin(z), np.cos(z), 0], [0, 0, 1]])
    return (rx @ ry @ rz).T


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--layout', choices=['raw', 'processed', 'both'], default='both',
                        help='raw: what preprocess_h36m.py reads (needs spacepy); processed: '
                        'what it writes')
    parser.add_argument('--frames', type=int, default=10, help='frames per video (50 fps)')
    parser.add_argument('--size', type=int, default=160, help='frame width = height, pixels')
    parser.add_argument('--sample-rate', type=int, default=5,
                        help='processed layout: keep every n-th frame, as preprocess_h36m.py')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.frames < 1 or args.size < 32 or args.size % 2 or args.sample_rate < 1:
        sys.exit('error: need --frames >= 1, an even --size >= 32 and --sample-rate >= 1')
    if args.layout in ('raw', 'both'):
        try:
            import spacepy.pycdf  # noqa: F401
        except ImportError as err:
            sys.exit(f'error: the raw layout writes CDF files with spacepy ({err}); '
                     '"pip install spacepy" or use --layout processed')
        raw = osp.join(args.out, 'raw')
        shutil.rmtree(raw, ignore_errors=True)
        write_raw(raw, args.frames, args.size, args.seed)
        print(f'raw layout (preprocess_h36m.py input): {raw}')
    if args.layout in ('processed', 'both'):
        processed = osp.join(args.out, 'processed')
        shutil.rmtree(processed, ignore_errors=True)
        write_processed(processed, args.frames, args.size, args.seed, args.sample_rate)
        print(f'processed layout (preprocess_h36m.py output): {processed}')


if __name__ == '__main__':
    main()
