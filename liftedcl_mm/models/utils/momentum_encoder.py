"""MoCo's key encoder: a momentum copy of the query encoder, run with shuffle-BN."""
from typing import Dict

import torch
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp


class MomentumEncoder(ExponentialMovingAverage):
    """EMA copy of ``nn.Sequential(backbone, head_1, ...)`` that computes the keys.

    ``update_parameters(query)`` is MMEngine's EMA, ``ema <- (1 - m) * ema + m * query``
    (``m = momentum``, MMEngine convention); its first call copies. ``start`` makes that first
    copy on the first training iteration, i.e. after ``init_weights`` / pre-trained loading,
    so the key encoder starts equal to the query encoder. State-dict keys are those of
    ``ExponentialMovingAverage`` (``module.*``, ``steps``).

    Args:
        model (nn.Sequential): The query modules; ``model[0]`` is the backbone, every other
            entry maps the backbone's features to a tuple whose first item is the output.
        momentum (float): EMA momentum ``m`` in (0, 1).
    """

    def __init__(self, model: nn.Sequential, momentum: float) -> None:
        super().__init__(model, momentum)
        self._started = False

    def start(self, model: nn.Sequential) -> None:
        """Copy ``model`` if no update was made yet (not even in a loaded checkpoint)."""
        if not self._started:
            if int(self.steps) == 0:
                self.update_parameters(model)
            self._started = True  # saves a host sync per iteration

    @torch.no_grad()
    def encode(self, images: torch.Tensor, heads: Dict[str, int]) -> Dict[str, torch.Tensor]:
        """Keys of ``images`` (N, 3, H, W) from the heads ``module[i]`` named in ``heads``.

        Under DDP the batch is shuffled across ranks before the backbone and unshuffled
        after each head (shuffle-BN), so BN statistics do not leak the positive pair.

        Returns:
            dict[str, torch.Tensor]: One output per entry of ``heads``, in batch order.
        """
        images, idx_unshuffle = self._shuffle(images)
        feats = self.module[0](images)
        keys = dict()
        for name, index in heads.items():
            out = self.module[index](feats)[0]
            keys[name] = out if idx_unshuffle is None else batch_unshuffle_ddp(out, idx_unshuffle)
        return keys

    @staticmethod
    def _shuffle(images: torch.Tensor):
        """``(images shuffled across ranks, idx_unshuffle)``; ``(images, None)`` on one rank."""
        if get_world_size() > 1:
            return batch_shuffle_ddp(images)
        return images, None

    def extra_repr(self) -> str:
        return f'momentum={self.momentum}, steps={int(self.steps)}'

