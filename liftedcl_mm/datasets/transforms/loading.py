"""Image loading that fails loudly, naming the file, on missing, corrupt or truncated images."""
import logging
import os.path as osp

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log

from liftedcl_mm.registry import TRANSFORMS

_JPEG_SOI = b'\xff\xd8'
_JPEG_EOI = b'\xff\xd9'


def is_complete_jpeg(data: bytes) -> bool:
    """Whether ``data`` is a JPEG stream that starts with SOI and ends with EOI.

    A truncated JPEG still decodes (libjpeg fills the missing rows with grey and only warns), so
    the end-of-image marker is the cheap, reliable completeness test. Padding bytes (NUL,
    whitespace) after EOI, which some writers append, are tolerated.
    """
    if len(data) < 4 or not data.startswith(_JPEG_SOI):
        return False
    return data.rstrip(b'\x00\r\n\t ').endswith(_JPEG_EOI)


def is_complete_jpeg_file(path: str) -> bool:
    """:func:`is_complete_jpeg` reading only the first and last bytes of ``path``."""
    try:
        with open(path, 'rb') as f:
            head = f.read(2)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64))
            tail = f.read()
    except OSError:
        return False
    return size >= 4 and head == _JPEG_SOI and tail.rstrip(b'\x00\r\n\t ').endswith(_JPEG_EOI)


def decode_image_checked(data: bytes, filename: str, flag: str = 'color',
                         backend: str = 'cv2') -> np.ndarray:
    """Decode image bytes, raising ``ValueError`` naming ``filename`` on corrupt/truncated data."""
    if len(data) == 0:
        raise ValueError(f'image file {filename} is empty')
    if data.startswith(_JPEG_SOI) and not is_complete_jpeg(data):
        raise ValueError(f'image file {filename} is a truncated JPEG (no end-of-image marker)')
    try:
        img = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception as err:  # decoders raise many types; name the file in one clear error
        raise ValueError(f'image file {filename} could not be decoded: {err}') from err
    if img is None or img.size == 0:
        raise ValueError(f'image file {filename} could not be decoded (corrupt or not an image)')
    return img


@TRANSFORMS.register_module()
class LoadImageWithCheck(LoadImageFromFile):
    """MMCV's ``LoadImageFromFile`` with clear errors for bad files.

    ``LoadImageFromFile`` turns a truncated JPEG into a silently grey-padded image and a corrupt
    file into a bare ``AssertionError``; this transform raises ``FileNotFoundError`` for a missing
    file and ``ValueError`` for an empty, corrupt or truncated one, always naming the file. With
    ``ignore_empty=True`` it returns ``None`` instead (the dataset then draws another sample).
    Same arguments as ``LoadImageFromFile``.
    """

    def transform(self, results: dict):
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                client = fileio.FileClient.infer_client(self.file_client_args, filename)
                data = client.get(filename)
            else:
                if self.backend_args is None and not osp.isfile(filename):
                    raise FileNotFoundError(f'image file {filename} does not exist')
                data = fileio.get(filename, backend_args=self.backend_args)
            img = decode_image_checked(data, filename, self.color_type, self.imdecode_backend)
        except (OSError, ValueError) as err:
            if self.ignore_empty:
                # one line per skipped image, so the log counts them
                print_log(f'skipping image (ignore_empty=True): {err}', logger='current',
                          level=logging.WARNING)
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
