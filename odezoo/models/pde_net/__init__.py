"""PDE-Net (ICML 2018) and PDE-Net 2.0 (J. Comput. Phys. 2019): forward Euler for a learned PDE."""

from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.pde_net.pde_net import PDENet as PDENet
    from odezoo.models.pde_net.pde_net2 import PDENet2 as PDENet2
    from odezoo.models.pde_net.pde_net_layers import MomentConv2D as MomentConv2D
    from odezoo.models.pde_net.pde_net_layers import SymNet as SymNet

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "PDENet": "odezoo.models.pde_net.pde_net",
        "PDENet2": "odezoo.models.pde_net.pde_net2",
        "MomentConv2D": "odezoo.models.pde_net.pde_net_layers",
        "SymNet": "odezoo.models.pde_net.pde_net_layers",
    },
)
