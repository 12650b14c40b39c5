"""Mean-field ResNet presets. `sha256` is that of the preset's `model.weights.h5`; metrics live in
its `metadata.json` (written by the recipe) and MODEL_CARDS.md."""

# The network of the three presets: 8 blocks x 64 particles on 7x7x32 features, Fashion-MNIST input.
NETWORK = {
    "num_blocks": 8,
    "width": 64,
    "channels": 32,
    "num_classes": 10,
    "image_shape": [28, 28, 1],
    "variant": "conv",
    "mean": [0.286],
    "std": [0.353],
}

PRESETS = {
    "mean_field_resnet8_fashion_mnist": {
        "model": "MeanFieldResNet",
        "config": {
            **NETWORK,
            "scaling": "mean_field",
            "shuffle_blocks": False,
        },
        "description": "Mean-field ResNet (8 blocks x 64 particles, 1/(L·M)), plain training, Fashion-MNIST.",
        "sha256": "7f2ff6a8005ffc7e8ae92253fd2653ab1d6c331e552153668d1aa56d60ba9a42",
        "dataset": "fashion_mnist",
        "paper": "arXiv:2003.05508",
    },
    "mean_field_resnet8_reordered_fashion_mnist": {
        "model": "MeanFieldResNet",
        "config": {
            **NETWORK,
            "scaling": "mean_field",
            "shuffle_blocks": True,
        },
        "description": "Mean-field ResNet (8 x 64, 1/(L·M)), random block order per step, on Fashion-MNIST.",
        "sha256": "5ff0fe975c05ac3c2d82bf9d55daf331f7aa450f639d2e312b00afd40905dfc6",
        "dataset": "fashion_mnist",
        "paper": "arXiv:2003.05508",
    },
    "standard_resnet8_fashion_mnist": {
        "model": "MeanFieldResNet",
        "config": {
            **NETWORK,
            "scaling": "standard",
            "shuffle_blocks": False,
        },
        "description": "The same network without 1/(L·M) (standard ResNet), the baseline, on Fashion-MNIST.",
        "sha256": "7845058c2a17de9e0f72b639c4448d34fdb0bfcf21d2834ac1893b3dadcf8cdb",
        "dataset": "fashion_mnist",
        "paper": "arXiv:2003.05508",
    },
}
