"""Adversarially trained presets (YOPO, NeurIPS 2019), all SmallCNN on Fashion-MNIST from the runs of
`bench/yopo_speed.py`. `sha256` is that of the preset's `model.weights.h5`; metrics live in its
`metadata.json` (written by the recipe) and MODEL_CARDS.md."""

SMALL_CNN_FASHION_MNIST = {"num_classes": 10, "image_shape": [28, 28, 1], "mean": None, "std": None}
_COMMON = {
    "model": "SmallCNN",
    "config": SMALL_CNN_FASHION_MNIST,
    "dataset": "fashion_mnist",
    "paper": "arXiv:1905.00877",
}

PRESETS = {
    "small_cnn_yopo5_3_fashion_mnist": {
        **_COMMON,
        "description": "SmallCNN adversarially trained by YOPO-5-3 (L-inf eps 0.1) on Fashion-MNIST.",
        "sha256": "76c7d2028764e56c9171c7789b20fd29b0e44c228892cfd8931c02cab582816e",
    },
    "small_cnn_pgd10_fashion_mnist": {
        **_COMMON,
        "description": "SmallCNN adversarially trained by PGD-10 (L-inf eps 0.1) on Fashion-MNIST.",
        "sha256": "d6b67b30d101f0e4adf8976016a7512cb3450be7669f076b1ee31eef20be0a11",
    },
    "small_cnn_natural_fashion_mnist": {
        **_COMMON,
        "description": "SmallCNN trained naturally on Fashion-MNIST, the robust presets' reference.",
        "sha256": "6ba98c64aa40cae841d11e808421d057f250f733c434893a9b8dcc6ff1e74921",
    },
}
