"""The zoo's model families, one folder each (`<family>/<family>.py`, `<family>_presets.py`).

Names load on first use; `import_all()` imports every family's models (registering them with Keras).
"""

import importlib
import pkgutil
from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.convnets import PreActResNet18 as PreActResNet18
    from odezoo.models.convnets import SmallCNN as SmallCNN
    from odezoo.models.convnets import WideResNet as WideResNet
    from odezoo.models.durr import DURR as DURR
    from odezoo.models.lm_resnet import LMResNet as LMResNet
    from odezoo.models.macaron import MacaronBert as MacaronBert
    from odezoo.models.macaron import MacaronTransformer as MacaronTransformer
    from odezoo.models.mean_field import MeanFieldResNet as MeanFieldResNet
    from odezoo.models.pde_net import PDENet as PDENet
    from odezoo.models.pde_net import PDENet2 as PDENet2

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "DURR": "odezoo.models.durr",
        "LMResNet": "odezoo.models.lm_resnet",
        "MacaronBert": "odezoo.models.macaron",
        "MacaronTransformer": "odezoo.models.macaron",
        "MeanFieldResNet": "odezoo.models.mean_field",
        "PDENet": "odezoo.models.pde_net",
        "PDENet2": "odezoo.models.pde_net",
        "PreActResNet18": "odezoo.models.convnets",
        "SmallCNN": "odezoo.models.convnets",
        "WideResNet": "odezoo.models.convnets",
    },
)


def families():
    """The names of the family folders."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def import_all():
    """Imports every public object of every family (so Keras knows every model class)."""
    for family in families():
        package = importlib.import_module(f"{__name__}.{family}")
        for name in getattr(package, "__all__", ()):
            getattr(package, name)
