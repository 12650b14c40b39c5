"""odezoo: a Keras 3 zoo of ODE-inspired networks ("a network is a numerical scheme")."""

from odezoo._version import __version__ as __version__
from odezoo.errors import OdezooError as OdezooError
from odezoo.models import LMResNet as LMResNet
from odezoo.presets import get_preset as get_preset
from odezoo.presets import list_presets as list_presets
from odezoo.presets import load as load
