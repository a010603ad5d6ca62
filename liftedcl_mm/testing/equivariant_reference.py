"""Per-sample reference of the equivariant branch: alignment and dense InfoNCE.

Written independently of ``liftedcl_mm.models`` (a Python loop over the batch, ``torch.flip``
and one ``torchvision.ops.roi_align`` per box where the batched code folds the flip into one
``grid_sample``, full logits and ``cross_entropy``) so that tests and benchmarks can
compare the batched implementation against it. Too slow and memory-hungry for training.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align


def _sample_region(feat: torch.Tensor, crop, region, out_size: int) -> torch.Tensor:
    """RoIAlign ``region`` (original-image coords) out of one map (C, h, w) covering ``crop``."""
    height, width = feat.shape[-2:]
    cx1, cy1, cx2, cy2 = crop
    rx1, ry1, rx2, ry2 = region
    # Region in feature coordinates (cell j spans [j, j + 1), centre j + 0.5).
    box = [0.0,
           (rx1 - cx1) / (cx2 - cx1) * width, (ry1 - cy1) / (cy2 - cy1) * height,
           (rx2 - cx1) / (cx2 - cx1) * width, (ry2 - cy1) / (cy2 - cy1) * height]
    rois = torch.tensor([box], dtype=feat.dtype, device=feat.device)
    return roi_align(feat[None], rois, (out_size, out_size), spatial_scale=1.0,
                     sampling_ratio=1, aligned=True)[0]


def reference_align(feat_q: torch.Tensor,
                    feat_k: torch.Tensor,
                    bboxes_q: torch.Tensor,
                    bboxes_k: torch.Tensor,
                    flips_q: torch.Tensor,
                    flips_k: torch.Tensor,
                    out_size: int = 16,
                    min_overlap: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample reference of ``align_shared_regions`` (same arguments and returns)."""
    out_q, out_k, valid = [], [], []
    for i in range(feat_q.shape[0]):
        fq = torch.flip(feat_q[i], dims=[-1]) if bool(flips_q[i]) else feat_q[i]
        fk = torch.flip(feat_k[i], dims=[-1]) if bool(flips_k[i]) else feat_k[i]
        bq = [float(v) for v in bboxes_q[i]]
        bk = [float(v) for v in bboxes_k[i]]
        region = [max(bq[0], bk[0]), max(bq[1], bk[1]), min(bq[2], bk[2]), min(bq[3], bk[3])]
        width, height = region[2] - region[0], region[3] - region[1]
        smaller_crop = min((bq[2] - bq[0]) * (bq[3] - bq[1]), (bk[2] - bk[0]) * (bk[3] - bk[1]))
        ok = width > 0 and height > 0 and width * height >= min_overlap * smaller_crop
        valid.append(ok)
        if ok:
            out_q.append(_sample_region(fq, bq, region, out_size))
            out_k.append(_sample_region(fk, bk, region, out_size))
        else:
            out_q.append(feat_q.new_zeros(feat_q.shape[1], out_size, out_size))
            out_k.append(feat_k.new_zeros(feat_k.shape[1], out_size, out_size))
    return (torch.stack(out_q), torch.stack(out_k),
            torch.tensor(valid, dtype=torch.bool, device=feat_q.device))


def reference_equivariant_loss(query: torch.Tensor,
                               key: torch.Tensor,
                               queue: torch.Tensor,
                               valid: Optional[torch.Tensor] = None,
                               temperature: float = 0.2) -> torch.Tensor:
    """Dense InfoNCE with the full (M, 1 + K) logits: mean cross-entropy over valid rows.

    Args:
        query (torch.Tensor): (M, C), L2-normalised here.
        key (torch.Tensor): (M, C) positives, L2-normalised here.
        queue (torch.Tensor): (K, C) negatives, used as given.
        valid (torch.Tensor, optional): (M,) bool; None means all rows.
        temperature (float): Softmax temperature.
    """
    q = F.normalize(query.float(), dim=1)
    k = F.normalize(key.float(), dim=1)
    logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ queue.detach().float().t()],
                       dim=1) / temperature
    targets = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    per_row = F.cross_entropy(logits, targets, reduction='none')
    if valid is None:
        return per_row.mean()
    weights = valid.float()
    return (per_row * weights).sum() / weights.sum().clamp(min=1.0)
