from odezoo.models.lm_resnet import LMResNet as LMResNet
from odezoo.models.pde_net import PDENet as PDENet
from odezoo.models.pde_net import PDENet2 as PDENet2
from odezoo.models.robust import PreActResNet18 as PreActResNet18
from odezoo.models.robust import SmallCNN as SmallCNN
from odezoo.models.robust import WideResNet as WideResNet
