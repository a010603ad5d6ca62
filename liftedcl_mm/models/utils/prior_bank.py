"""The discriminator's "real" skeletons and their per-iteration draw."""
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import get_rank

from liftedcl_mm.registry import DATASETS


class PriorBank(nn.Module):
    """A fixed set of prior skeletons (paper App. B), drawn from deterministically.

    The draw of iteration ``step`` on rank ``r`` is a pure function of
    ``(seed, step, r)``, so a resumed run (which restores the algorithm's step counter)
    draws what an uninterrupted one would. The skeletons are a non-persistent buffer: they
    follow the model's device but are rebuilt from the config, so checkpoints stay small.

    The authors also draw one prior skeleton per image at random, from a pre-sampled file.

    Args:
        skeletons (np.ndarray | torch.Tensor): Prior skeletons of shape (P, J, 3).
        seed (int): Seed of the draws (the prior dataset's seed). Defaults to 0.
    """

    def __init__(self, skeletons, seed: int = 0) -> None:
        super().__init__()
        skeletons = torch.as_tensor(np.asarray(skeletons, dtype=np.float32))
        if skeletons.dim() != 3 or skeletons.shape[0] < 1 or skeletons.shape[2] != 3:
            raise ValueError(f'prior skeletons must have shape (P, J, 3), '
                             f'got {tuple(skeletons.shape)}')
        self.seed = int(seed)
        self.register_buffer('skeletons', skeletons, persistent=False)

    @classmethod
    def build(cls, prior, num_joints: Optional[int] = None,
              expected_by: str = 'num_joints') -> 'PriorBank':
        """From a ``SkeletonPriorDataset`` config (DATASETS) or a built dataset that has
        ``skeletons`` (P, J, 3) and optionally ``seed``; checks ``J == num_joints`` (named
        ``expected_by`` in the error)."""
        dataset = DATASETS.build(prior) if isinstance(prior, dict) else prior
        skeletons = getattr(dataset, 'skeletons', None)
        if skeletons is None:
            raise ValueError(f'prior dataset {type(dataset).__name__} has no `skeletons`')
        seed = (getattr(dataset, 'seed', None)
                or (prior.get('seed', 0) if isinstance(prior, dict) else 0))
        bank = cls(skeletons, int(seed))
        if num_joints is not None and bank.num_joints != int(num_joints):
            raise ValueError(f'prior skeletons have {bank.num_joints} joints but '
                             f'{expected_by} is {num_joints}')
        return bank

    @property
    def num_joints(self) -> int:
        return self.skeletons.shape[1]

    def draw(self, num: int, step: int, device: Optional[torch.device] = None,
             substep: int = 0) -> torch.Tensor:
        """``num`` skeletons for iteration ``step`` (deterministic, rank-dependent).

        Args:
            substep (int): Index of the draw within the iteration (LiftedCL's extra
                adversarial steps); 0 is the iteration's own draw.

        Returns:
            torch.Tensor: (num, J, 3) float32 on ``device`` (default: the bank's).
        """
        seed = (self.seed * 1_000_003 + int(step)) * 1009 + get_rank()
        if substep:  # substep 0 keeps the single-draw seeds; torch seeds only use 32 bits
            seed = int(np.random.SeedSequence([seed, int(substep)]).generate_state(1)[0])
        gen = torch.Generator()
        gen.manual_seed(seed)
        index = torch.randint(self.skeletons.shape[0], (int(num), ), generator=gen)
        out = self.skeletons[index.to(self.skeletons.device)]
        return out if device is None else out.to(device)

    def extra_repr(self) -> str:
        return f'num_skeletons={self.skeletons.shape[0]}, seed={self.seed}'
