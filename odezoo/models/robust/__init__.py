from odezoo.models.robust.robust_nets import PreActResNet18 as PreActResNet18
from odezoo.models.robust.robust_nets import SmallCNN as SmallCNN
from odezoo.models.robust.robust_nets import WideResNet as WideResNet
from odezoo.models.robust.robust_nets import check_architecture as check_architecture
from odezoo.models.robust.robust_nets import robust_classifier as robust_classifier
from odezoo.models.robust.robust_presets import PRESETS
from odezoo.presets import register

register(SmallCNN, PRESETS)
