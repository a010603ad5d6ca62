"""Person crops of COCO made by ``tools/dataset_converters/prepare_coco_human_crops.py``."""
import json
import logging
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from liftedcl_mm.registry import DATASETS, TRANSFORMS

_REQUIRED_FIELDS = ('img_path', )


@DATASETS.register_module()
class COCOHumanCropDataset(BaseDataset):
    """256x192 human crops of COCO (paper App. A), for self-supervised pre-training.

    The annotation file is the ``{"metainfo", "data_list"}`` JSON written by the crop tool; each
    entry needs ``img_path`` (relative to ``data_prefix['img_path']``) and may carry ``src_file``,
    ``bbox``, ``ext_bbox``, ``ann_id``, ``image_id``. Use ``LoadImageWithCheck`` in the pipeline for
    clear errors on corrupt crops.

    Args:
        data_root (str): Root of the prepared data, e.g. ``'data/coco_human/'``.
        ann_file (str): Annotation file relative to ``data_root``.
        data_prefix (dict): ``dict(img_path=...)``, the crop folder relative to ``data_root``.
        pipeline (list): Data pipeline.
        skip_bad (bool): Drop entries that are malformed or whose crop file is missing (and count
            them in ``num_skipped``) instead of raising. Defaults to False.
        check_files (bool): Check at load time that every listed crop exists (a ``stat`` per
            entry, ~1 s for 150K crops). Defaults to True.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(dataset_name='coco_human_crops')

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'annotations/train2017.json',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence = (),
                 skip_bad: bool = False,
                 check_files: bool = True,
                 **kwargs) -> None:
        self.skip_bad = skip_bad
        self.check_files = check_files
        self.num_skipped = 0
        if data_prefix is None:
            data_prefix = dict(img_path='crops/train2017/')
        # Built from our registry so that our transforms resolve without a default scope.
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(
            data_root=data_root, ann_file=ann_file, data_prefix=data_prefix, pipeline=pipeline,
            **kwargs)

    def _bad(self, message: str) -> None:
        if not self.skip_bad:
            raise ValueError(message + ' (pass skip_bad=True to skip such entries)')
        self.num_skipped += 1

    def load_data_list(self) -> List[dict]:
        ann_file = self.ann_file
        img_dir = self.data_prefix.get('img_path', '')
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'annotation file {ann_file} does not exist (run '
                                    'tools/dataset_converters/prepare_coco_human_crops.py)')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'image folder {img_dir} does not exist')
        with open(ann_file, 'r') as f:
            text = f.read()
        if not text.strip():
            raise ValueError(f'annotation file {ann_file} is empty')
        try:
            content = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f'annotation file {ann_file} is not valid JSON: {err}') from err
        if not isinstance(content, dict) or not isinstance(content.get('data_list'), list):
            raise ValueError(f'annotation file {ann_file} must be a JSON object with a '
                             '"data_list" list')
        metainfo = content.get('metainfo', {})
        if isinstance(metainfo, dict):
            for key, value in metainfo.items():
                self._metainfo.setdefault(key, value)

        self.num_skipped = 0
        data_list = []
        for idx, raw in enumerate(content['data_list']):
            if not isinstance(raw, dict) or any(k not in raw for k in _REQUIRED_FIELDS):
                self._bad(f'entry {idx} of {ann_file} lacks the fields {_REQUIRED_FIELDS}: '
                          f'{raw!r:.200}')
                continue
            if not isinstance(raw['img_path'], str) or not raw['img_path']:
                self._bad(f'entry {idx} of {ann_file} has an invalid img_path {raw["img_path"]!r}')
                continue
            info = dict(raw)
            info['img_path'] = osp.join(img_dir, raw['img_path'])
            if self.check_files and not osp.isfile(info['img_path']):
                self._bad(f'entry {idx} of {ann_file}: crop {info["img_path"]} does not exist')
                continue
            data_list.append(info)
        if not data_list:
            raise ValueError(f'annotation file {ann_file} lists no usable crop')
        if self.num_skipped:
            print_log(f'{ann_file}: skipped {self.num_skipped} malformed or missing entries '
                      f'(skip_bad=True), kept {len(data_list)}', logger='current',
                      level=logging.WARNING)
        return data_list
