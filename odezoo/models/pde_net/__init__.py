from odezoo.models.pde_net.pde_net import PDENet as PDENet
from odezoo.models.pde_net.pde_net2 import PDENet2 as PDENet2
from odezoo.models.pde_net.pde_net_layers import MomentConv2D as MomentConv2D
from odezoo.models.pde_net.pde_net_layers import SymNet as SymNet
