from odezoo.models.convnets import PreActResNet18 as PreActResNet18
from odezoo.models.convnets import SmallCNN as SmallCNN
from odezoo.models.convnets import WideResNet as WideResNet
from odezoo.models.lm_resnet import LMResNet as LMResNet
from odezoo.models.pde_net import PDENet as PDENet
from odezoo.models.pde_net import PDENet2 as PDENet2
