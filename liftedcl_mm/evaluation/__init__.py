"""Evaluation metrics of liftedcl_mm (registered in MMPose's METRICS and ours)."""
from .metrics import *  # noqa: F401,F403
