"""Mean-field ResNet (ICML 2020): residual blocks as averages of particles, depth as a time step."""

from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.mean_field.mean_field import MeanFieldResNet as MeanFieldResNet

__getattr__, __all__ = lazy_exports(__name__, {"MeanFieldResNet": "odezoo.models.mean_field.mean_field"})
