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
            "padding": "symmetric",  # retrained with the official padding (issue 13)
        },
        "description": "LM-ResNet-20 (linear two-step scheme) trained on Fashion-MNIST.",
        "sha256": "1a95a57883240a1b1582f7dd668f0d4914ff43867048d361c88dcd6232a3bcba",
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
            "padding": "symmetric",  # retrained with the official padding (issue 13)
        },
        "description": "Pre-activation ResNet-20 (Euler scheme), LM-ResNet-20's baseline, on Fashion-MNIST.",
        "sha256": "f2ad211f03d90f2d5ee3bece026e241e1bcfd8f7e76f70e7bc04ba8404a67e77",
        "dataset": "fashion_mnist",
        "paper": "arXiv:1710.10121",
    },
}
