from odezoo.models.robust.robust_nets import PreActResNet18 as PreActResNet18
from odezoo.models.robust.robust_nets import SmallCNN as SmallCNN
from odezoo.models.robust.robust_nets import WideResNet as WideResNet
