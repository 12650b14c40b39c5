"""LM-ResNet presets. `sha256` is that of the preset's `model.weights.h5`."""

FASHION_MNIST_INPUT = {"image_shape": [28, 28, 1], "mean": [0.2860], "std": [0.3530]}

PRESETS = {}
