"""``init_cfg=dict(type='Pretrained')`` that refuses to leave the module at random.

MMEngine's ``PretrainedInit`` loads with ``strict=False`` and only logs the missing keys: an
MMPose config pointing at a full LiftedCL checkpoint without ``prefix='backbone.'`` fine-tunes
from random weights and exits 0. Importing ``liftedcl_mm`` registers :class:`CheckedPretrainedInit`
under the name ``Pretrained`` (MMEngine's root registry, so MMPose/MMPretrain configs get it too).
"""
from typing import Optional

from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

from .state_check import StateMismatch, checkpoint_state_dict, compare_state


class CheckedPretrainedInit(PretrainedInit):
    """``PretrainedInit`` with a ceiling on the weights it may leave unloaded.

    Args:
        checkpoint (str): Checkpoint file or URL.
        prefix (str, optional): Load only the keys under this prefix (e.g. ``'backbone.'``).
        map_location (str): As in ``torch.load``. Defaults to ``'cpu'``.
        max_missing (int, optional): Most module weights the checkpoint may lack; None
            disables the check (MMEngine's behaviour). Defaults to 5.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 map_location: str = 'cpu', max_missing: Optional[int] = 5) -> None:
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        self.max_missing = max_missing

    def __call__(self, module) -> None:
        from mmengine.runner.checkpoint import (_load_checkpoint, _load_checkpoint_with_prefix,
                                                load_state_dict)
        if self.prefix is None:
            state = checkpoint_state_dict(_load_checkpoint(self.checkpoint, self.map_location))
        else:
            state = _load_checkpoint_with_prefix(self.prefix, self.checkpoint,
                                                 self.map_location)
        diff = compare_state(module.state_dict(), state)
        if self.max_missing is not None and len(diff['missing']) > self.max_missing:
            total = len(module.state_dict())
            held = sorted({str(k).split('.')[0] for k in state})[:6]
            raise StateMismatch(
                f'init_cfg Pretrained "{self.checkpoint}" (prefix={self.prefix!r}) leaves '
                f'{len(diff["missing"])} of {total} weights of {type(module).__name__} '
                f'unloaded (e.g. {", ".join(diff["missing"][:3])}); the file holds '
                f'{", ".join(held)}.... For a full liftedcl_mm/MMPretrain checkpoint add '
                "prefix='backbone.' to the init_cfg, or convert it once with: python "
                f'tools/model_converters/extract_backbone.py {self.checkpoint} backbone.pth '
                '(set max_missing=None to allow a partial load).')
        print_log(f'load model from: {self.checkpoint} (prefix={self.prefix!r})',
                  logger='current')
        load_state_dict(module, state, strict=False, logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())


def register_checked_pretrained_init() -> None:
    """Make ``type='Pretrained'`` build :class:`CheckedPretrainedInit` (idempotent)."""
    WEIGHT_INITIALIZERS.register_module(
        name='Pretrained', module=CheckedPretrainedInit, force=True)
