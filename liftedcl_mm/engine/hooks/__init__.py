from .atomic_checkpoint_hook import AtomicCheckpointHook, find_nonfinite_tensors

__all__ = ['AtomicCheckpointHook', 'find_nonfinite_tensors']
