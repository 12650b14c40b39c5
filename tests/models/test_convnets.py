"""YOPO's classifiers (docs/papers.md#yopo-hamiltonian): parameter counts by hand / from the literature,
configs, f0 split."""

import numpy as np
import pytest

from odezoo.adversarial import split_model
from odezoo.models.convnets import PreActResNet18, SmallCNN, WideResNet
from odezoo.testing import check_symmetric_padding

SMALL = {"num_classes": 3, "image_shape": (8, 8, 3)}


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


def test_preact_resnet18_size_and_final_bn_relu():
    """YOPO's official PreActResNet18 (11,171,146 parameters) pools the last stage directly; the option
    adds a BN-ReLU (512 gammas and betas) before the pooling."""
    official, with_bn_relu = PreActResNet18(), PreActResNet18(final_bn_relu=True)
    assert trainable(official) == 11_171_146
    assert trainable(with_bn_relu) == 11_171_146 + 1024
    assert official.get_layer("pool").input is official.get_layer("stage4_block2_add").output
    assert with_bn_relu.get_layer("pool").input is with_bn_relu.get_layer("final_relu").output
    with pytest.raises(ValueError, match="Received: final_bn_relu='yes'"):
        PreActResNet18(final_bn_relu="yes")


@pytest.mark.parametrize(
    "model, strided",
    [(lambda: PreActResNet18(**SMALL), 3), (lambda: WideResNet(depth=10, widen_factor=1, **SMALL), 2)],
)
def test_every_convolution_pads_one_pixel_on_each_side(model, strided):
    """As the official PyTorch code (`padding=1`), also the stride-2 convolutions (8 -> 4 -> 2 -> 1)."""
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    assert check_symmetric_padding(model(), x) == strided


@pytest.mark.parametrize(
    "cls, kwargs, legacy",
    [
        (PreActResNet18, SMALL, {"padding": "same", "final_bn_relu": True}),
        (WideResNet, {"depth": 10, "widen_factor": 1, **SMALL}, {"padding": "same"}),
    ],
)
def test_a_config_saved_before_the_options_builds_the_old_network(cls, kwargs, legacy):
    """A config without `padding` (and `final_bn_relu`) was saved by the old code: Keras' "same" padding
    and PreActResNet18's final BN-ReLU."""
    config = cls(**kwargs).get_config()
    old = cls.from_config({k: v for k, v in config.items() if k not in legacy})
    assert {k: old.get_config()[k] for k in legacy} == legacy
    assert "final_relu" in {layer.name for layer in old.layers}
    with pytest.raises(ValueError, match="Received: padding='valid'"):
        cls(**kwargs, padding="valid")


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (SmallCNN, {}),
        (PreActResNet18, {"num_classes": 3}),
        (PreActResNet18, {"num_classes": 3, "final_bn_relu": True, "padding": "same"}),
        (WideResNet, {"depth": 10, "widen_factor": 1}),
    ],
)
def test_config_round_trip_and_first_layer_split(cls, kwargs):
    model = cls(**kwargs)
    clone = cls.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    first, rest = split_model(model, cls.first_layer)
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.inputs[0].shape[1:])).astype("float32")
    np.testing.assert_allclose(np.asarray(rest(first(x))), np.asarray(model(x)), atol=1e-5)
