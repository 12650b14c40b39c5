from odezoo.models.lm_resnet.lm_resnet import LMResNet
from odezoo.models.lm_resnet.lm_resnet_presets import PRESETS
from odezoo.presets import register

register(LMResNet, PRESETS)
