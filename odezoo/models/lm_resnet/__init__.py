"""LM-ResNet (ICML 2018): the linear two-step scheme and its Euler (ResNet) baseline."""

from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.lm_resnet.lm_resnet import LMResNet as LMResNet

__getattr__, __all__ = lazy_exports(__name__, {"LMResNet": "odezoo.models.lm_resnet.lm_resnet"})
