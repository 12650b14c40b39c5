from odezoo.models.lm_resnet import LMResNet as LMResNet
