from odezoo.models.pde_net.pde_net_layers import MomentConv2D as MomentConv2D
from odezoo.models.pde_net.pde_net_layers import SymNet as SymNet
