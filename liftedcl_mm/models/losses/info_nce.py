"""Image-level InfoNCE of MoCo v2 (the paper's ``L_inv``)."""
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from liftedcl_mm.registry import MODELS


def check_contrastive_inputs(query: torch.Tensor, key: torch.Tensor,
                              queue: torch.Tensor) -> None:
    """Shapes shared by the contrastive losses: query/key (N, C), queue (K, C), K >= 1."""
    if query.dim() != 2 or key.shape != query.shape:
        raise ValueError('query and key must both have shape (N, C), got '
                         f'{tuple(query.shape)} and {tuple(key.shape)}')
    if queue.dim() != 2 or queue.shape[0] < 1 or queue.shape[1] != query.shape[1]:
        raise ValueError(f'queue must have shape (K, {query.shape[1]}) with K >= 1, '
                         f'got {tuple(queue.shape)}')


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """InfoNCE with a queue of negatives (MoCo v2), the paper's ``L_inv``.

    ``loss = mean_n -log(exp(q_n.k_n / t) / (exp(q_n.k_n / t) + sum_j exp(q_n.u_j / t)))``
    with ``u_j`` the rows of the queue.

    ``query`` and ``key`` are L2-normalised here, so callers may pass raw projector outputs.
    ``key`` and ``queue`` are constants (detached): the key encoder is a momentum copy and
    the queue holds past keys. The queue is copied before use so that enqueueing into it in
    place after this forward does not invalidate the saved tensors of the backward pass.

    Args:
        temperature (float): Softmax temperature ``t``. Defaults to 0.2 (the paper).
        loss_weight (float): Factor applied to the loss. Defaults to 1.0.
    """

    def __init__(self, temperature: float = 0.2, loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)

    def logits(self, query: torch.Tensor, key: torch.Tensor,
               queue: torch.Tensor) -> torch.Tensor:
        """Cosine logits divided by the temperature; column 0 is the positive.

        Args:
            query (torch.Tensor): Query vectors, shape (N, C).
            key (torch.Tensor): Positive keys, shape (N, C).
            queue (torch.Tensor): Negative keys, shape (K, C), assumed L2-normalised.

        Returns:
            torch.Tensor: Logits of shape (N, 1 + K), float32 (float64 for float64 input).
        """
        check_contrastive_inputs(query, key, queue)
        # At least float32, also under AMP: half precision loses too much in exp(logit / t).
        dtype = torch.promote_types(query.dtype, torch.float32)
        with torch.autocast(device_type=query.device.type, enabled=False):
            q = F.normalize(query.to(dtype), dim=1)
            k = F.normalize(key.detach().to(dtype), dim=1)
            negatives = queue.detach().to(dtype).clone()
            pos = (q * k).sum(dim=1, keepdim=True)
            neg = q @ negatives.t()
            return torch.cat([pos, neg], dim=1) / self.temperature

    @staticmethod
    def top1_accuracy(logits: torch.Tensor) -> torch.Tensor:
        """Percentage of rows whose positive (column 0) has the strictly largest logit.

        Args:
            logits (torch.Tensor): Shape (N, 1 + K).

        Returns:
            torch.Tensor: Scalar tensor in [0, 100] (no host sync).
        """
        pos = logits[:, 0]
        best_neg = logits[:, 1:].max(dim=1).values
        return (pos > best_neg).float().mean() * 100.0

    def forward(self,
                query: torch.Tensor,
                key: torch.Tensor,
                queue: torch.Tensor,
                return_accuracy: bool = False
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Compute the loss.

        Args:
            query (torch.Tensor): Query vectors, shape (N, C).
            key (torch.Tensor): Positive keys, shape (N, C).
            queue (torch.Tensor): Negative keys, shape (K, C), L2-normalised rows.
            return_accuracy (bool): Also return the top-1 accuracy (%) of the logits.

        Returns:
            torch.Tensor | tuple: The weighted scalar loss, or ``(loss, top1)`` when
            ``return_accuracy`` is True (``top1`` is detached).
        """
        logits = self.logits(query, key, queue)
        # Row-wise logsumexp minus the positive == cross-entropy with target 0.
        loss = (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean() * self.loss_weight
        if return_accuracy:
            return loss, self.top1_accuracy(logits.detach())
        return loss

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}, loss_weight={self.loss_weight}'
