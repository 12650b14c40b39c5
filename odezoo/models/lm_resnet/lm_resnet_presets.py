"""LM-ResNet presets. `sha256` is that of the preset's `model.weights.h5`; metrics live in its
`metadata.json` (written by the recipe) and MODEL_CARDS.md."""

FASHION_MNIST_INPUT = {"image_shape": [28, 28, 1], "mean": [0.286], "std": [0.353]}

PRESETS = {
    "lm_resnet20_fashion_mnist": {
        "model": "LMResNet",
        "config": {
            **FASHION_MNIST_INPUT,
            "depth": 20,
            "num_classes": 10,
            "scheme": "lm",
            "block_type": "basic",
            "width": 16,
            "death_rate": 0.0,
            "padding": "same",  # trained before the official symmetric padding (issue 13)
        },
        "description": "LM-ResNet-20 (linear two-step scheme) trained on Fashion-MNIST.",
        "sha256": "59f7011e00c3316b85b4462c227cb82ff5435192af8996c3fec6992ea2fe73db",
        "dataset": "fashion_mnist",
        "paper": "arXiv:1710.10121",
    },
    "resnet20_fashion_mnist": {
        "model": "LMResNet",
        "config": {
            **FASHION_MNIST_INPUT,
            "depth": 20,
            "num_classes": 10,
            "scheme": "euler",
            "block_type": "basic",
            "width": 16,
            "death_rate": 0.0,
            "padding": "same",  # trained before the official symmetric padding (issue 13)
        },
        "description": "Pre-activation ResNet-20 (Euler scheme), LM-ResNet-20's baseline, on Fashion-MNIST.",
        "sha256": "07394593203f3d2127489461a3d8a482d12248e6653a1cf16c70ff578e7ba5a8",
        "dataset": "fashion_mnist",
        "paper": "arXiv:1710.10121",
    },
}
