from odezoo.models.pde_net.pde_net import PDENet as PDENet
from odezoo.models.pde_net.pde_net2 import PDENet2 as PDENet2
from odezoo.models.pde_net.pde_net_layers import MomentConv2D as MomentConv2D
from odezoo.models.pde_net.pde_net_layers import SymNet as SymNet
from odezoo.models.pde_net.pde_net_presets import PRESETS
from odezoo.presets import register

register(PDENet2, {k: v for k, v in PRESETS.items() if k.startswith("pde_net2_")})
register(PDENet, {k: v for k, v in PRESETS.items() if not k.startswith("pde_net2_")})
