from odezoo.models.lm_resnet import LMResNet as LMResNet
from odezoo.models.pde_net import PDENet as PDENet
from odezoo.models.pde_net import PDENet2 as PDENet2
