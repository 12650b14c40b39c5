"""The plain convolutional classifiers of YOPO's experiments: SmallCNN, PreActResNet18, WideResNet."""

from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.convnets.convnets import PreActResNet18 as PreActResNet18
    from odezoo.models.convnets.convnets import SmallCNN as SmallCNN
    from odezoo.models.convnets.convnets import WideResNet as WideResNet
    from odezoo.models.convnets.convnets import build_classifier as build_classifier
    from odezoo.models.convnets.convnets import check_architecture_name as check_architecture_name

_MODULE = "odezoo.models.convnets.convnets"
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        name: _MODULE
        for name in (
            "PreActResNet18",
            "SmallCNN",
            "WideResNet",
            "build_classifier",
            "check_architecture_name",
        )
    },
)
