import pytest


def _scope_guard():
    """Give back the default scope that was current before (a generator for the fixtures).

    A test that runs an MMPose config in-process (``default_scope='mmpose'``) creates an MMEngine
    ``DefaultScope`` instance that stays current afterwards; later tests building our types by
    name would then look them up in MMPose's registries. Instances created in between are dropped
    and the one current before is current again.
    """
    from mmengine.registry import DefaultScope
    names = list(DefaultScope._instance_dict)
    yield
    # Re-read: overwrite_default_scope() replaces the dict object on exit.
    instances = DefaultScope._instance_dict
    for name in [n for n in instances if n not in names]:
        del instances[name]
    if names and names[-1] in instances:
        instances.move_to_end(names[-1])


# Module scope too: module-scoped fixtures (e.g. a tiny training run) are set up before any
# function-scoped fixture of the test that first needs them.
@pytest.fixture(scope='module', autouse=True)
def _restore_default_scope_per_module():
    yield from _scope_guard()


@pytest.fixture(autouse=True)
def _restore_default_scope_per_test():
    yield from _scope_guard()
