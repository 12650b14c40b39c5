"""odezoo: a Keras 3 zoo of ODE-inspired networks ("a network is a numerical scheme").

The public names below load on first use, so `import odezoo` (and the CLI's argument
parsing) does not start TensorFlow until a model, preset or data set is needed.
"""

import importlib
from typing import TYPE_CHECKING

from odezoo._version import __version__ as __version__
from odezoo.errors import OdezooError as OdezooError
from odezoo.errors import OdezooWarning as OdezooWarning

if TYPE_CHECKING:
    from odezoo.adversarial import AdversarialTrainer as AdversarialTrainer
    from odezoo.adversarial import Attack as Attack
    from odezoo.adversarial import pgd as pgd
    from odezoo.adversarial import robust_evaluate as robust_evaluate
    from odezoo.data.images import preprocess_images as preprocess_images
    from odezoo.data.pde import simulate as simulate
    from odezoo.models import DURR as DURR
    from odezoo.models import LMResNet as LMResNet
    from odezoo.models import MacaronBert as MacaronBert
    from odezoo.models import MacaronTransformer as MacaronTransformer
    from odezoo.models import MeanFieldResNet as MeanFieldResNet
    from odezoo.models import PDENet as PDENet
    from odezoo.models import PDENet2 as PDENet2
    from odezoo.models import PreActResNet18 as PreActResNet18
    from odezoo.models import SmallCNN as SmallCNN
    from odezoo.models import WideResNet as WideResNet
    from odezoo.presets import get_preset as get_preset
    from odezoo.presets import list_presets as list_presets
    from odezoo.zoo import load as load

_LAZY = {
    "AdversarialTrainer": "odezoo.adversarial",
    "Attack": "odezoo.adversarial",
    "pgd": "odezoo.adversarial",
    "robust_evaluate": "odezoo.adversarial",
    "DURR": "odezoo.models",
    "LMResNet": "odezoo.models",
    "MacaronBert": "odezoo.models",
    "MacaronTransformer": "odezoo.models",
    "MeanFieldResNet": "odezoo.models",
    "PDENet": "odezoo.models",
    "PDENet2": "odezoo.models",
    "PreActResNet18": "odezoo.models",
    "SmallCNN": "odezoo.models",
    "WideResNet": "odezoo.models",
    "preprocess_images": "odezoo.data.images",
    "simulate": "odezoo.data.pde",
    "get_preset": "odezoo.presets",
    "list_presets": "odezoo.presets",
    "load": "odezoo.zoo",
}
__all__ = sorted([*_LAZY, "OdezooError", "OdezooWarning", "__version__"])


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'odezoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
