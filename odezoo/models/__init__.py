"""The zoo's model families, one folder each (`<family>/<family>.py`, its task, its `presets.json`).

A family's public names (its package's `__all__`) are attributes of this package too, loaded on first
use: `odezoo.models.LMResNet`. `import_all()` imports every family's models (registering them with
Keras). Families never import each other; what several share lives in `odezoo.models._*`.
"""

import importlib
import pkgutil


def families():
    """The names of the family folders."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def _family_packages():
    return [importlib.import_module(f"{__name__}.{family}") for family in families()]


def __getattr__(name):
    """A family's public name, from the family that exports it (its module imported now)."""
    for package in _family_packages():
        if name in getattr(package, "__all__", ()):
            value = getattr(package, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_all():
    """Imports every public object of every family (so Keras knows every model class)."""
    for package in _family_packages():
        for name in getattr(package, "__all__", ()):
            getattr(package, name)
