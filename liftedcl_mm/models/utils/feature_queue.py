"""A ring buffer of L2-normalised key vectors (MoCo's dictionary), used for both queues."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather

from liftedcl_mm.registry import MODELS


@MODELS.register_module()
class FeatureQueue(nn.Module):
    """Fixed-length queue of negatives for contrastive losses.

    LiftedCL keeps two of these: invariant keys and pooled equivariant keys. Both the
    contents and the write pointer are buffers, so checkpoints restore them and a resumed
    run continues exactly where it stopped.

    Args:
        dim (int): Length of each vector.
        length (int): Number of vectors kept (the paper: 16384).

    Attributes:
        queue (torch.Tensor): Buffer of shape (length, dim), L2-normalised rows; starts
            random.
        ptr (torch.Tensor): Long buffer of shape (1,), the row the next key is written to.
    """

    def __init__(self, dim: int, length: int) -> None:
        super().__init__()
        if int(dim) < 1 or int(length) < 1:
            raise ValueError(f'dim and length must be positive, got dim={dim}, length={length}')
        self.dim = int(dim)
        self.length = int(length)
        self.register_buffer('queue', F.normalize(torch.randn(self.length, self.dim), dim=1))
        self.register_buffer('ptr', torch.zeros(1, dtype=torch.long))

    def get(self) -> torch.Tensor:
        """Return a detached copy of the queue, shape (length, dim).

        A copy, so that enqueueing in place after a loss has used it does not invalidate
        tensors saved for that loss's backward.
        """
        return self.queue.detach().clone()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Gather ``keys`` from all ranks, L2-normalise them and overwrite the oldest rows.

        Works for any batch size: the write wraps around the end of the buffer, and when
        more vectors arrive than the queue holds, only the newest ``length`` are kept (what a
        sequential write would leave). Needs no host-device synchronisation.

        Args:
            keys (torch.Tensor): Keys of this rank, shape (N, dim). Every rank must pass the
                same N (a requirement of ``all_gather``).
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f'keys must have shape (N, {self.dim}), got {tuple(keys.shape)}')
        keys = torch.cat(all_gather(keys.detach().contiguous()), dim=0)
        keys = F.normalize(keys.float(), dim=1).to(self.queue)
        num = keys.shape[0]
        if num == 0:
            return
        skipped = max(num - self.length, 0)
        keys = keys[skipped:]
        rows = (self.ptr + skipped + torch.arange(keys.shape[0], device=self.ptr.device))
        self.queue.index_copy_(0, rows % self.length, keys)
        self.ptr.copy_((self.ptr + num) % self.length)

    def extra_repr(self) -> str:
        return f'dim={self.dim}, length={self.length}'
