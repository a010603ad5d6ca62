"""Non-finite losses: detect them consistently across ranks, raise or skip the iteration."""
from typing import Dict, Iterable, List, Optional

import torch
import torch.nn as nn
from mmengine.dist import all_reduce


def nonfinite_terms(losses: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the losses that are non-finite on any rank.

    The flags are summed over ranks, so every rank gets the same answer and takes the same
    branch (raise or skip); otherwise the next collective would deadlock.

    Args:
        losses (dict[str, torch.Tensor]): Loss tensors of any shape.

    Returns:
        list[str]: The offending names, in the order of ``losses``.
    """
    names = list(losses)
    if not names:
        return []
    finite = torch.stack([torch.isfinite(losses[n].detach().float()).all() for n in names])
    bad = (~finite).float()
    all_reduce(bad, op='sum')
    return [n for n, flag in zip(names, bad.tolist()) if flag > 0]


class BufferSnapshot:
    """Copies of every buffer of some modules, to put back after a skipped iteration.

    A forward pass in training mode changes buffers (BN running statistics) even when the
    iteration's update is then skipped; restoring them makes the skip a true no-op.

    Args:
        modules (Iterable[nn.Module | None]): Modules whose buffers (recursively) are
            saved; None entries are ignored.
    """

    def __init__(self, modules: Iterable[Optional[nn.Module]]) -> None:
        self.saved = [(buf, buf.detach().clone()) for m in modules if m is not None
                      for buf in m.buffers()]

    @torch.no_grad()
    def restore(self) -> None:
        """Write the saved values back, in place (the buffers keep their identity)."""
        for buf, value in self.saved:
            buf.copy_(value)


class NonFiniteGuard:
    """The policy for an iteration with a non-finite loss.

    ``'raise'``: ``check`` raises ``FloatingPointError`` naming the terms and the iteration.
    ``'skip'``: ``check`` returns the offending names and the caller makes no update;
    ``snapshot`` (taken before the forward pass) restores the buffers the forward changed.

    Args:
        mode (str): ``'raise'`` or ``'skip'``.
        owner (str): Named in the error message. Defaults to ``'model'``.
    """

    def __init__(self, mode: str, owner: str = 'model') -> None:
        if mode not in ('raise', 'skip'):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {mode!r}")
        self.mode = mode
        self.owner = owner

    def snapshot(self, modules: Iterable[Optional[nn.Module]]) -> Optional[BufferSnapshot]:
        """A ``BufferSnapshot`` of ``modules`` in ``'skip'`` mode, else None (no copy)."""
        return BufferSnapshot(modules) if self.mode == 'skip' else None

    def check(self, losses: Dict[str, torch.Tensor], step: int) -> List[str]:
        """Names of the non-finite ``losses`` on any rank (raises in ``'raise'`` mode)."""
        bad = nonfinite_terms(losses)
        if bad and self.mode == 'raise':
            raise FloatingPointError(
                f'{self.owner}: non-finite {", ".join(bad)} at iteration {step} '
                f"(set model.nonfinite='skip' to skip such iterations)")
        return bad
