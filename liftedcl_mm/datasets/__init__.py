from .transforms import *  # noqa: F401,F403
# Each module registers itself on import; add one import line per new module.
from .skeleton_prior import SkeletonPriorDataset, sample_skeletons  # noqa: F401
from .coco_human_crop import COCOHumanCropDataset  # noqa: F401
from .h36m_image_dataset import Human36mImageDataset  # noqa: F401
