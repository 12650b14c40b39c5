"""Training recipes: a frozen `Config` with the schedule's defaults (and `validate()`) plus
`train(config, workdir)`, all on the run machinery of `recipes._common`.

A recipe is named after the preset it writes: `<architecture><size>_[<variant>_]<dataset>`, e.g.
`lm_resnet20_fashion_mnist`, `small_cnn_yopo5_3_fashion_mnist`, `pde_net2_burgers2d`. `RECIPES` maps
each name to `(train function, default Config)`; `ALIASES` keeps the names of earlier releases.
"""

import difflib

from odezoo.errors import OdezooError
from odezoo.recipes import (
    adversarial,
    durr,
    glue,
    image_classification,
    masked_lm,
    mean_field,
    pde,
    translation,
)

_CONFIGS = [
    (image_classification.train, image_classification.FASHION_MNIST),
    (image_classification.train, image_classification.RESNET20_FASHION_MNIST),
    (image_classification.train, image_classification.CIFAR10),
    (image_classification.train, image_classification.CIFAR100),
    (pde.train, pde.BURGERS),
    (pde.train, pde.HEAT),
    (pde.train, pde.CDR),
    (pde.train, pde.LINEAR_CD),
    *((adversarial.train, config) for config in adversarial.recipes().values()),
    (mean_field.train, mean_field.MEAN_FIELD),
    (mean_field.train, mean_field.REORDERED),
    (mean_field.train, mean_field.STANDARD),
    (durr.train, durr.DENOISE),
    (durr.train, durr.DEBLOCK),
    *(
        (translation.train, config)
        for config in (
            translation.DICTIONARY,
            translation.TRANSFORMER_DICTIONARY,
            translation.IWSLT14,
            translation.WMT14,
            translation.WMT14_BIG,
        )
    ),
    *((glue.train, config) for config in glue.CONFIGS),
    (masked_lm.train, masked_lm.MACARON_BERT_SMALL),
    (masked_lm.train, masked_lm.BERT_SMALL),
]
RECIPES = {config.preset_name(): (train, config) for train, config in _CONFIGS}
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
