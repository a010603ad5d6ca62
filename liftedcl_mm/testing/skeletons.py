"""Hand-built skeletons for tests: joints from bone vectors by a naive walk of the H36M tree."""
import numpy as np

from liftedcl_mm.skeleton.h36m import H36M_BONES, H36M_NUM_JOINTS, H36M_TEMPLATE_BONES


def joints_from_bones(bones) -> np.ndarray:
    """Joints (17, 3) from bone vectors (16, 3) (one per ``H36M_BONES`` entry), root at 0."""
    joints = np.zeros((H36M_NUM_JOINTS, 3))
    for k, (parent, child) in enumerate(H36M_BONES):
        joints[child] = joints[parent] + bones[k]
    return joints


def template_bones() -> np.ndarray:
    """A writable float64 copy of the upright template's bone vectors (16, 3)."""
    return np.array(H36M_TEMPLATE_BONES, dtype=np.float64)
