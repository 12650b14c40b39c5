"""Lazy re-exports: a package names its public objects and where they live, and imports a module
only when one of them is first used (so listing presets or parsing the CLI starts no TensorFlow)."""

import importlib


def lazy_exports(package, names):
    """`(__getattr__, __all__)` for `package`, whose attribute `name` is `names[name]`'s attribute."""

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__, sorted(names)
