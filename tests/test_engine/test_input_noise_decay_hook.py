"""InputNoiseDecayHook: the schedule against its formula, on a real KCSDiscriminator."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import liftedcl_mm  # noqa: F401
from liftedcl_mm.registry import HOOKS, MODELS


def _runner(input_noise=0.5, max_iters=100, discriminator=True):
    model = nn.Module()
    if discriminator:
        model.discriminator = MODELS.build(dict(type='KCSDiscriminator', hid_channels=8,
                                                input_noise=input_noise))
    return SimpleNamespace(model=model, max_iters=max_iters, iter=0)


def _run_to(hook, runner, step):
    runner.iter = step
    hook.before_train_iter(runner, batch_idx=step)
    return runner.model.discriminator.input_noise


def test_noise_decays_linearly_to_end_factor_and_stays():
    runner = _runner(0.5, max_iters=100)
    hook = HOOKS.build(dict(type='InputNoiseDecayHook'))
    hook.before_train(runner)
    for step, expected in ((0, 0.5), (25, 0.375), (50, 0.25), (99, 0.005), (100, 0.0),
                           (150, 0.0)):
        assert _run_to(hook, runner, step) == pytest.approx(expected), step

    runner = _runner(1.0, max_iters=100)
    hook = HOOKS.build(dict(type='InputNoiseDecayHook', end_factor=0.2, begin=20, end=60))
    hook.before_train(runner)
    for step, expected in ((0, 1.0), (20, 1.0), (40, 0.6), (60, 0.2), (90, 0.2)):
        assert _run_to(hook, runner, step) == pytest.approx(expected), step
    # a resumed run (a fresh hook at iteration 40) continues the schedule
    resumed, hook = _runner(1.0, max_iters=100), HOOKS.build(
        dict(type='InputNoiseDecayHook', end_factor=0.2, begin=20, end=60))
    hook.before_train(resumed)
    assert _run_to(hook, resumed, 40) == pytest.approx(0.6)


def test_decayed_noise_reaches_the_discriminators_forward():
    runner = _runner(0.5, max_iters=10)
    hook = HOOKS.build(dict(type='InputNoiseDecayHook'))
    hook.before_train(runner)
    disc = runner.model.discriminator.train()
    joints = torch.randn(4, 17, 3)
    torch.manual_seed(0)
    noisy = disc(joints)
    _run_to(hook, runner, 10)  # noise 0: training forward equals the eval forward
    assert not torch.allclose(noisy, disc.eval()(joints))
    torch.testing.assert_close(disc.train()(joints), disc.eval()(joints))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='end_factor'):
        HOOKS.build(dict(type='InputNoiseDecayHook', end_factor=1.5))
    with pytest.raises(ValueError, match='end'):
        HOOKS.build(dict(type='InputNoiseDecayHook', begin=50, end=50))
    with pytest.raises(ValueError, match='input_noise'):
        HOOKS.build(dict(type='InputNoiseDecayHook')).before_train(
            _runner(discriminator=False))
    with pytest.raises(ValueError, match='max_iters'):
        HOOKS.build(dict(type='InputNoiseDecayHook', begin=200)).before_train(_runner())
