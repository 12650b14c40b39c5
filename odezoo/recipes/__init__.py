"""Training recipes: a frozen `Config` with the schedule's defaults plus `train(config, workdir)`.

`RECIPES` maps each recipe name to `(train function, default Config)`.
"""

from odezoo.recipes import adversarial, image_classification, pde

RECIPES = {
    "lm_resnet_fashion_mnist": (image_classification.train, image_classification.FASHION_MNIST),
    "lm_resnet_cifar10": (image_classification.train, image_classification.CIFAR10),
    "lm_resnet_cifar100": (image_classification.train, image_classification.CIFAR100),
    "pde_net2_burgers2d": (pde.train, pde.BURGERS),
    "pde_net2_heat": (pde.train, pde.HEAT),
    "pde_net2_cdr": (pde.train, pde.CDR),
    "pde_net_linear_cd": (pde.train, pde.LINEAR_CD),
    **{name: (adversarial.train, config) for name, config in adversarial.recipes().items()},
}
