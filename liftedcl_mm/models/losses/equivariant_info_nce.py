"""Dense (location-wise) InfoNCE of the paper's eq. (3), ``L_equiv``, in bounded memory."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from liftedcl_mm.registry import MODELS
from .info_nce import check_contrastive_inputs


class _ChunkedDenseInfoNCE(torch.autograd.Function):
    """Weighted sum over rows of ``logsumexp([pos, neg]) - pos``, ``chunk_size`` rows at a time.

    The (M, K) logits are the whole cost of this loss (M = N * S * S rows, K = 16384), so
    they never exist at once: each chunk's logits are turned into softmax probabilities in
    place, and, because the output is a scalar, the gradient of the loss with respect to
    each input row is formed from those probabilities right away. Backward then only scales
    the stored (M, C) gradients by the incoming scalar: nothing (M, K)-sized is kept or
    recomputed, which makes it both lighter and faster than recomputing in backward.
    """

    @staticmethod
    def forward(ctx, query, key, queue, weight, temperature, chunk_size, need_grad_query,
                need_grad_key):
        # query, key: (M, C) L2-normalised, float32 or float64; queue: (K, C); weight: (M,).
        # The caller disables autocast.
        num_rows = query.shape[0]
        queue = queue.to(query.dtype) / temperature  # folds 1/t into both matmuls below
        loss_rows = query.new_empty(num_rows)
        grad_query = torch.empty_like(query) if need_grad_query else None
        grad_key = torch.empty_like(key) if need_grad_key else None
        for start in range(0, num_rows, chunk_size):
            rows = slice(start, start + chunk_size)
            q, k = query[rows], key[rows]
            pos = (q * k).sum(dim=1) / temperature
            probs = q @ queue.t()  # logits of the negatives, (chunk, K)
            # Stable logsumexp over [pos, negatives] without concatenating.
            shift = torch.maximum(probs.max(dim=1).values, pos)
            probs.sub_(shift[:, None]).exp_()
            pos_exp = torch.exp(pos - shift)
            denom = probs.sum(dim=1) + pos_exp
            loss_rows[rows] = shift + torch.log(denom) - pos
            if grad_query is None and grad_key is None:
                continue
            # d(row loss)/d(pos logit) = p_pos - 1, d/d(neg logit j) = p_j.
            probs.div_(denom[:, None])
            pos_coef = (pos_exp / denom - 1.0) * weight[rows] / temperature
            if grad_query is not None:
                # queue already carries 1/t.
                grad_query[rows] = (probs @ queue) * weight[rows, None] \
                    + pos_coef[:, None] * k
            if grad_key is not None:
                grad_key[rows] = pos_coef[:, None] * q
        loss = (loss_rows * weight).sum()
        ctx.save_for_backward(grad_query, grad_key)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        grad_query, grad_key = ctx.saved_tensors
        if grad_query is not None:
            grad_query = grad_query * grad_output
        if grad_key is not None:
            grad_key = grad_key * grad_output
        return grad_query, grad_key, None, None, None, None, None, None


@MODELS.register_module()
class EquivariantInfoNCELoss(nn.Module):
    """Dense InfoNCE over aligned feature locations, the paper's ``L_equiv`` (eq. 3).

    Each row ``r_s`` of ``query`` is one location of an aligned query map; its positive is
    the ``key`` row at the same location and its negatives are the queue rows (pooled
    equivariant vectors of other images):
    ``loss = mean_{valid s} -log(exp(r_s.t_s / t) / (exp(r_s.t_s / t) + sum_j exp(r_s.u_j / t)))``.

    ``query`` and ``key`` are L2-normalised here. The queue is a constant. ``key`` receives
    a gradient only if it requires one (normally it comes from the momentum encoder and does
    not). All arithmetic is float32 (float64 for float64 inputs), also under autocast.
    Rows are processed ``chunk_size`` at a time, so memory is ``O(chunk_size * K)`` instead
    of ``O(M * K)``; the value and gradients equal those of the full-logits cross-entropy.

    Args:
        temperature (float): Softmax temperature ``t``. Defaults to 0.2 (the paper).
        loss_weight (float): Factor applied to the loss. Defaults to 1.0.
        chunk_size (int): Rows per chunk. Defaults to 2048.
    """

    def __init__(self,
                 temperature: float = 0.2,
                 loss_weight: float = 1.0,
                 chunk_size: int = 2048) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if int(chunk_size) < 1:
            raise ValueError(f'chunk_size must be a positive integer, got {chunk_size}')
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.chunk_size = int(chunk_size)

    def forward(self,
                query: torch.Tensor,
                key: torch.Tensor,
                queue: torch.Tensor,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            query (torch.Tensor): Query location vectors, shape (M, C), e.g. M = N * S * S.
                Rows must be finite (also the invalid ones).
            key (torch.Tensor): Positive key vectors at the same locations, shape (M, C).
            queue (torch.Tensor): Negative vectors, shape (K, C), L2-normalised rows.
            valid (torch.Tensor, optional): Bool mask of shape (M,); rows where it is False
                are left out of the mean. None means all rows are valid.

        Returns:
            torch.Tensor: Weighted scalar loss, the mean over valid rows; 0 (still attached
            to the graph) when no row is valid.
        """
        check_contrastive_inputs(query, key, queue)
        num_rows = query.shape[0]
        # At least float32 (AMP inputs are upcast); float64 stays float64 for gradcheck.
        dtype = torch.promote_types(query.dtype, torch.float32)
        if valid is None:
            weight = query.new_full((num_rows, ), 1.0 / max(num_rows, 1), dtype=dtype)
        else:
            if valid.shape != (num_rows, ):
                raise ValueError(f'valid must have shape ({num_rows},), got {tuple(valid.shape)}')
            valid = valid.to(device=query.device, dtype=dtype)
            # clamp keeps an all-invalid batch at loss 0 instead of 0/0 (no host sync).
            weight = valid / valid.sum().clamp(min=1.0)

        with torch.autocast(device_type=query.device.type, enabled=False):
            q = F.normalize(query.to(dtype), dim=1)
            k = F.normalize(key.to(dtype), dim=1)
            grad_on = torch.is_grad_enabled()
            loss = _ChunkedDenseInfoNCE.apply(q, k, queue.detach(), weight, self.temperature,
                                              self.chunk_size, grad_on and q.requires_grad,
                                              grad_on and k.requires_grad)
        return loss * self.loss_weight

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, loss_weight={self.loss_weight}, '
                f'chunk_size={self.chunk_size}')
