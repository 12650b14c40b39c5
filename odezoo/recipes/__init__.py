"""Training recipes: one module per family, named after its folder under `odezoo/models/` (a package for
a family with several, as `macaron`), with a frozen `Config` (a `_common.RunConfig`: the schedule's
defaults, `preset_name()` and `validate()`), `train(config, workdir)` on the run layer of
`recipes._common` and `odezoo.training`, and `CONFIGS`, its default configs. The modules are found
here: a new family's recipe is registered by existing.

A recipe is named after the preset it writes: `<architecture><size>_[<variant>_]<dataset>`, e.g.
`lm_resnet20_fashion_mnist`, `small_cnn_yopo5_3_fashion_mnist`, `pde_net2_burgers2d`. `RECIPES` maps
each name to `(train function, default Config)`; `ALIASES` keeps the names of earlier releases.
"""

import difflib
import importlib
import pkgutil

from odezoo.errors import OdezooError


def _recipe_modules(path, prefix):
    """The modules below `path` (packages searched too), but those whose name starts with `_`."""
    for info in pkgutil.iter_modules(path, prefix):
        if not info.name.rpartition(".")[2].startswith("_"):
            module = importlib.import_module(info.name)
            yield module
            if info.ispkg:
                yield from _recipe_modules(module.__path__, f"{info.name}.")


def _discover():
    """`{recipe name: (train function, default Config)}` of every recipe module's `CONFIGS`."""
    recipes = {}
    for module in _recipe_modules(__path__, f"{__name__}."):
        for config in getattr(module, "CONFIGS", ()):
            name = config.preset_name()
            if name in recipes:
                raise RuntimeError(f"Two recipes are named {name!r} ({module.__name__} and another).")
            recipes[name] = (module.train, config)
    return recipes


RECIPES = _discover()
ALIASES = {
    "lm_resnet_fashion_mnist": "lm_resnet20_fashion_mnist",
    "lm_resnet_cifar10": "lm_resnet56_cifar10",
    "lm_resnet_cifar100": "lm_resnet56_cifar100",
}


def get_recipe(name):
    """`(train function, default Config)` of the recipe `name` (or an alias of it)."""
    name = ALIASES.get(name, name)
    if name not in RECIPES:
        close = difflib.get_close_matches(name, [*RECIPES, *ALIASES], n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise OdezooError(f"Unknown recipe {name!r}.{hint} Recipes: {', '.join(sorted(RECIPES))}.")
    return RECIPES[name]
