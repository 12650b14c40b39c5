"""YOPO's classifiers (models.md 5.1): parameter counts by hand / from the literature, configs, f0 split."""

import numpy as np
import pytest

from odezoo.adversarial import split_model
from odezoo.models.convnets import PreActResNet18, SmallCNN, WideResNet


def trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def test_small_cnn_parameter_count_by_hand():
    convs = (1 * 32 * 9 + 32) + (32 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 64 * 9 + 64)
    dense = (1024 * 200 + 200) + (200 * 200 + 200) + (200 * 10 + 10)
    assert trainable(SmallCNN()) == convs + dense == 312_202


def test_wide_resnets_match_the_published_sizes():
    assert trainable(WideResNet(depth=34, widen_factor=10)) == 46_160_474  # WRN-34-10, 46.2M
    assert trainable(WideResNet(depth=28, widen_factor=10)) == 36_479_194  # WRN-28-10, 36.5M
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(depth=30)


def test_preact_resnet18_size():
    # 11,171,146 for the common CIFAR PreActResNet18 without a final BN; ours has BN-ReLU before pooling
    assert trainable(PreActResNet18()) == 11_171_146 + 1024


@pytest.mark.parametrize(
    "cls, kwargs",
    [(SmallCNN, {}), (PreActResNet18, {"num_classes": 3}), (WideResNet, {"depth": 10, "widen_factor": 1})],
)
def test_config_round_trip_and_first_layer_split(cls, kwargs):
    model = cls(**kwargs)
    clone = cls.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    first, rest = split_model(model, cls.first_layer)
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.inputs[0].shape[1:])).astype("float32")
    np.testing.assert_allclose(np.asarray(rest(first(x))), np.asarray(model(x)), atol=1e-5)
