from .atomic_checkpoint_hook import AtomicCheckpointHook, find_nonfinite_tensors
from .input_noise_decay_hook import InputNoiseDecayHook
from .lifted_skeleton_vis_hook import LiftedSkeletonVisHook, draw_lifted_grid, pose_spread

__all__ = [
    'AtomicCheckpointHook', 'find_nonfinite_tensors', 'InputNoiseDecayHook',
    'LiftedSkeletonVisHook', 'draw_lifted_grid', 'pose_spread'
]
