import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all modules of liftedcl_mm (and MMPretrain's) into the registries.

    Args:
        init_default_scope (bool): Whether to set the default scope to ``'liftedcl_mm'`` so that
            types are looked up in our registries first. Defaults to True.
    """
    import mmpretrain.utils
    mmpretrain.utils.register_all_modules(init_default_scope=False)

    import liftedcl_mm.datasets  # noqa: F401,F403
    import liftedcl_mm.engine  # noqa: F401,F403
    import liftedcl_mm.models  # noqa: F401,F403

    if not init_default_scope:
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope is None:
        DefaultScope.get_instance('liftedcl_mm', scope_name='liftedcl_mm')
    elif current_scope.scope_name != 'liftedcl_mm':
        warnings.warn(f'The current default scope "{current_scope.scope_name}" is not '
                      '"liftedcl_mm", `register_all_modules` will force the current '
                      'default scope to be "liftedcl_mm". If this is not expected, '
                      'please set `init_default_scope=False`.')
        # avoid name conflict
        new_instance_name = f'liftedcl_mm-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='liftedcl_mm')
