"""SimpleBaseline heatmap head with a 3D lifting branch regularised by the kinematic prior."""
from typing import Optional, Sequence, Tuple

from mmengine.registry import DefaultScope
from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS as MMPOSE_MODELS
from torch import Tensor

from liftedcl_mm.registry import MODELS


@MODELS.register_module()
@MMPOSE_MODELS.register_module()
class LiftingHeatmapHead(HeatmapHead):
    """MMPose's ``HeatmapHead`` plus a lifting network penalised by a 3D kinematic prior.

    The fine-tuning variant of paper Table 9: next to the heatmaps, a lifting network
    (``LiftingHead``: pooled last backbone map -> residual FC blocks -> (N, 17, 3) H36M joints)
    runs on the same features during training, and ``loss()`` adds ``loss_kinematic``, the
    ``KinematicPriorLoss`` of its output, to MMPose's ``loss_kpt``. Prediction is
    ``HeatmapHead``'s, unchanged. Every other argument is ``HeatmapHead``'s.

    Args:
        lifting_head (dict): ``LiftingHead`` config (liftedcl_mm registry). ``in_channels``
            defaults to the head's ``in_channels`` and ``normalize`` to False: the penalty
            is translation- and scale-invariant, so the raw output (the authors') is
            penalised as it is. Defaults to
            ``dict(type='LiftingHead', hid_channels=512, num_blocks=1, num_joints=17)``.
        loss_kinematic (dict): ``KinematicPriorLoss`` config; its ``loss_weight`` weighs the
            penalty. Defaults to ``dict(type='KinematicPriorLoss', loss_weight=1.0)``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 lifting_head: Optional[dict] = None,
                 loss_kinematic: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(in_channels=in_channels, out_channels=out_channels, **kwargs)
        lifting_head = dict(lifting_head or dict(
            type='LiftingHead', hid_channels=512, num_blocks=1, num_joints=17))
        lifting_head.setdefault('in_channels', in_channels)
        # LiftingHead normalises by default (for the discriminator of pre-training); the
        # kinematic penalty needs no normalisation, so fine-tuning keeps the raw output.
        lifting_head.setdefault('normalize', False)
        loss_kinematic = dict(loss_kinematic or dict(type='KinematicPriorLoss'))
        # Both live in the liftedcl_mm registry; build there whatever the default scope is.
        with DefaultScope.overwrite_default_scope('liftedcl_mm'):
            self.lifting_head = MODELS.build(lifting_head)
            self.loss_kinematic_module = MODELS.build(loss_kinematic)

    def lift(self, feats: Sequence[Tensor]) -> Tensor:
        """3D joints (N, 17, 3) from the multi-level features (uses the last, (N, C, H, W))."""
        return self.lifting_head(feats[-1])

    def loss(self, feats: Tuple[Tensor], batch_data_samples, train_cfg: dict = {}) -> dict:
        """``HeatmapHead.loss`` (``loss_kpt``, ``acc_pose``) plus ``loss_kinematic``."""
        losses = super().loss(feats, batch_data_samples, train_cfg)
        joints = self.lift(feats)
        losses['loss_kinematic'] = self.loss_kinematic_module(joints)
        return losses
