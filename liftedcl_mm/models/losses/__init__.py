# Each module registers itself on import; add one import line per new module.
from .equivariant_info_nce import EquivariantInfoNCELoss
from .info_nce import InfoNCELoss
from .kinematic_prior import KinematicPriorLoss
from .lsgan import LSGANLoss
from .rle_loss_3d import RLELoss3D

__all__ = ['InfoNCELoss', 'EquivariantInfoNCELoss', 'LSGANLoss', 'KinematicPriorLoss',
           'RLELoss3D']
