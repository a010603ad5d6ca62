"""Anneal the discriminator's instance noise over training."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from liftedcl_mm.registry import HOOKS


@HOOKS.register_module()
class InputNoiseDecayHook(Hook):
    """Decay ``model.discriminator.input_noise`` linearly over training.

    Instance noise keeps D from separating the two sets by details early on, but it also blurs
    the details D should see in the end (a bone slightly out of proportion); Sønderby et al.
    (2017) anneal it. The noise at iteration ``t`` is the configured value times
    ``1 - (1 - end_factor) * clip((t - begin) / (end - begin), 0, 1)``; it is recomputed from
    the iteration before every step, so a resumed run continues the schedule.

    Args:
        end_factor (float): Fraction of the configured noise left at ``end``. Defaults to 0.
        begin (int): Iteration where the decay starts. Defaults to 0.
        end (int, optional): Iteration where it reaches ``end_factor``; None: ``max_iters``.
    """

    priority = 'NORMAL'

    def __init__(self, end_factor: float = 0.0, begin: int = 0,
                 end: Optional[int] = None) -> None:
        if not 0.0 <= float(end_factor) <= 1.0:
            raise ValueError(f'end_factor must be in [0, 1], got {end_factor}')
        if end is not None and int(end) <= int(begin):
            raise ValueError(f'end ({end}) must be > begin ({begin})')
        self.end_factor, self.begin = float(end_factor), int(begin)
        self.end = None if end is None else int(end)
        self._disc, self._base = None, None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        disc = getattr(model, 'discriminator', None)
        disc = disc.module if is_model_wrapper(disc) else disc
        if disc is None or not hasattr(disc, 'input_noise'):
            raise ValueError('InputNoiseDecayHook needs model.discriminator with input_noise '
                             f'(KCSDiscriminator), got {type(disc).__name__}')
        self._disc, self._base = disc, float(disc.input_noise)
        if self.end is None:
            self.end = int(runner.max_iters)
            if self.end <= self.begin:
                raise ValueError(f'begin ({self.begin}) must be < max_iters ({self.end})')

    def noise_at(self, step: int) -> float:
        """The input noise of iteration ``step`` (0-based)."""
        progress = min(1.0, max(0.0, (step - self.begin) / (self.end - self.begin)))
        return self._base * (1.0 - (1.0 - self.end_factor) * progress)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._disc.input_noise = self.noise_at(runner.iter)
