from odezoo.models.convnets.convnets import PreActResNet18 as PreActResNet18
from odezoo.models.convnets.convnets import SmallCNN as SmallCNN
from odezoo.models.convnets.convnets import WideResNet as WideResNet
from odezoo.models.convnets.convnets import build_classifier as build_classifier
from odezoo.models.convnets.convnets import check_architecture as check_architecture
from odezoo.models.convnets.convnets_presets import PRESETS
from odezoo.presets import register

register(SmallCNN, PRESETS)
