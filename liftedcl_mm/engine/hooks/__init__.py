from .atomic_checkpoint_hook import AtomicCheckpointHook, find_nonfinite_tensors
from .lifted_skeleton_vis_hook import LiftedSkeletonVisHook, draw_lifted_grid, pose_spread

__all__ = [
    'AtomicCheckpointHook', 'find_nonfinite_tensors', 'LiftedSkeletonVisHook', 'draw_lifted_grid',
    'pose_spread'
]
