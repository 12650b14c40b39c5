"""odezoo: a Keras 3 zoo of ODE-inspired networks ("a network is a numerical scheme").

The public names below load on first use, so `import odezoo` (and the CLI's argument
parsing) does not start TensorFlow until a model, preset or data set is needed.
"""

import importlib
from typing import TYPE_CHECKING

from odezoo._version import __version__ as __version__
from odezoo.errors import OdezooError as OdezooError

if TYPE_CHECKING:
    from odezoo.data.pde import simulate as simulate
    from odezoo.models import LMResNet as LMResNet
    from odezoo.models import PDENet as PDENet
    from odezoo.models import PDENet2 as PDENet2
    from odezoo.presets import get_preset as get_preset
    from odezoo.presets import list_presets as list_presets
    from odezoo.presets import load as load

_LAZY = {
    "LMResNet": "odezoo.models",
    "PDENet": "odezoo.models",
    "PDENet2": "odezoo.models",
    "simulate": "odezoo.data.pde",
    "get_preset": "odezoo.presets",
    "list_presets": "odezoo.presets",
    "load": "odezoo.presets",
}
__all__ = [
    "LMResNet",
    "OdezooError",
    "PDENet",
    "PDENet2",
    "__version__",
    "get_preset",
    "list_presets",
    "load",
    "simulate",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'odezoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
