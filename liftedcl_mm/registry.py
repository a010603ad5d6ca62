"""Registries of liftedcl_mm.

Every registry is a child of MMPretrain's (itself a child of MMEngine's root), so a config with
``default_scope='liftedcl_mm'`` finds our types first, then every MMPretrain and MMEngine type.
Types of sibling scopes are reached with a prefix, e.g. ``type='mmpose.TopdownPoseEstimator'``.
``locations`` makes the registries import our modules lazily, as MMPretrain does.
"""
from mmengine.registry import Registry
from mmpretrain.registry import DATA_SAMPLERS as MMPRETRAIN_DATA_SAMPLERS
from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
from mmpretrain.registry import EVALUATORS as MMPRETRAIN_EVALUATORS
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmpretrain.registry import LOG_PROCESSORS as MMPRETRAIN_LOG_PROCESSORS
from mmpretrain.registry import LOOPS as MMPRETRAIN_LOOPS
from mmpretrain.registry import METRICS as MMPRETRAIN_METRICS
from mmpretrain.registry import MODEL_WRAPPERS as MMPRETRAIN_MODEL_WRAPPERS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMPRETRAIN_OPTIM_WRAPPER_CONSTRUCTORS
from mmpretrain.registry import OPTIM_WRAPPERS as MMPRETRAIN_OPTIM_WRAPPERS
from mmpretrain.registry import OPTIMIZERS as MMPRETRAIN_OPTIMIZERS
from mmpretrain.registry import PARAM_SCHEDULERS as MMPRETRAIN_PARAM_SCHEDULERS
from mmpretrain.registry import RUNNER_CONSTRUCTORS as \
    MMPRETRAIN_RUNNER_CONSTRUCTORS
from mmpretrain.registry import RUNNERS as MMPRETRAIN_RUNNERS
from mmpretrain.registry import TASK_UTILS as MMPRETRAIN_TASK_UTILS
from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
from mmpretrain.registry import VISBACKENDS as MMPRETRAIN_VISBACKENDS
from mmpretrain.registry import VISUALIZERS as MMPRETRAIN_VISUALIZERS
from mmpretrain.registry import \
    WEIGHT_INITIALIZERS as MMPRETRAIN_WEIGHT_INITIALIZERS

SCOPE = 'liftedcl_mm'


def _child(name, parent, locations):
    return Registry(
        name, parent=parent, scope=SCOPE, locations=[f'{SCOPE}.{loc}' for loc in locations])


RUNNERS = _child('runner', MMPRETRAIN_RUNNERS, ['engine'])
RUNNER_CONSTRUCTORS = _child('runner constructor', MMPRETRAIN_RUNNER_CONSTRUCTORS, ['engine'])
LOOPS = _child('loop', MMPRETRAIN_LOOPS, ['engine'])
HOOKS = _child('hook', MMPRETRAIN_HOOKS, ['engine'])
LOG_PROCESSORS = _child('log processor', MMPRETRAIN_LOG_PROCESSORS, ['engine'])
OPTIMIZERS = _child('optimizer', MMPRETRAIN_OPTIMIZERS, ['engine'])
OPTIM_WRAPPERS = _child('optim_wrapper', MMPRETRAIN_OPTIM_WRAPPERS, ['engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMPRETRAIN_OPTIM_WRAPPER_CONSTRUCTORS, ['engine'])
PARAM_SCHEDULERS = _child('parameter scheduler', MMPRETRAIN_PARAM_SCHEDULERS, ['engine'])

DATASETS = _child('dataset', MMPRETRAIN_DATASETS, ['datasets'])
DATA_SAMPLERS = _child('data sampler', MMPRETRAIN_DATA_SAMPLERS, ['datasets'])
TRANSFORMS = _child('transform', MMPRETRAIN_TRANSFORMS, ['datasets'])

MODELS = _child('model', MMPRETRAIN_MODELS, ['models'])
MODEL_WRAPPERS = _child('model_wrapper', MMPRETRAIN_MODEL_WRAPPERS, ['models'])
WEIGHT_INITIALIZERS = _child('weight initializer', MMPRETRAIN_WEIGHT_INITIALIZERS, ['models'])
TASK_UTILS = _child('task util', MMPRETRAIN_TASK_UTILS, ['models'])

METRICS = _child('metric', MMPRETRAIN_METRICS, [])
EVALUATORS = _child('evaluator', MMPRETRAIN_EVALUATORS, [])

VISUALIZERS = _child('visualizer', MMPRETRAIN_VISUALIZERS, [])
VISBACKENDS = _child('vis_backend', MMPRETRAIN_VISBACKENDS, [])
