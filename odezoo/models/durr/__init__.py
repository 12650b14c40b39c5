"""DURR (ICLR 2019): a recurrent restorer whose number of steps a learned policy chooses per image."""

from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.durr.durr import DURR as DURR

__getattr__, __all__ = lazy_exports(__name__, {"DURR": "odezoo.models.durr.durr"})
