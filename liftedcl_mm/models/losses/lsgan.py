"""Least-squares GAN loss (the paper's ``L_adv``)."""
import torch
import torch.nn as nn

from liftedcl_mm.registry import MODELS


@MODELS.register_module()
class LSGANLoss(nn.Module):
    """Least-squares GAN loss: ``mean((score - target) ** 2)``.

    ``target`` is 1 for real and 0 for fake. The discriminator is trained with prior
    skeletons as real and lifted skeletons as fake; the encoder is trained to make the
    discriminator call its lifted skeletons real (``target_is_real=True``). With
    ``loss_weight=1`` for both discriminator terms the objective is the authors'
    ``(D(prior) - 1)^2 + D(lifted)^2`` (no 1/2).

    Args:
        loss_weight (float): Factor applied to the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, score: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """Compute the loss.

        Args:
            score (torch.Tensor): Discriminator scores, shape (N, 1) or (N,).
            target_is_real (bool): Target 1 if True, 0 if False.

        Returns:
            torch.Tensor: Weighted scalar loss (float32, also under autocast).
        """
        if score.dim() == 2 and score.shape[1] == 1:
            score = score[:, 0]
        if score.dim() != 1:
            raise ValueError(f'score must have shape (N, 1) or (N,), got {tuple(score.shape)}')
        if not isinstance(target_is_real, bool):
            raise TypeError(f'target_is_real must be a bool, got {type(target_is_real).__name__}')
        target = 1.0 if target_is_real else 0.0
        return (score.float() - target).pow(2).mean() * self.loss_weight

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
