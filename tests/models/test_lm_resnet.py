"""LM-ResNet: the properties of docs/papers.md#lm-resnet-tests, and the model harness."""

import re

import keras
import numpy as np
import pytest

from odezoo import LMResNet, OdezooError
from odezoo.models._conv import conv
from odezoo.models.lm_resnet.lm_resnet_layers import StochasticDepth
from odezoo.testing import check_model, check_symmetric_padding, copy_weights_by_name, reference_resnet

TINY = {"depth": 14, "num_classes": 5, "image_shape": (16, 16, 3), "width": 4}


def _set_k(model, value):
    for layer in model.layers:
        if layer.name.endswith("_lm"):
            layer.k.assign(value)


def test_model_harness(images, tmp_path):
    check_model(LMResNet, {**TINY, "mean": [0.5] * 3, "std": [0.25] * 3}, images, (2, 5), tmp_path)


def test_features_without_head(images):
    model = LMResNet(**{**TINY, "num_classes": None})
    assert model(images).shape == (2, 4 * TINY["width"])


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_k_zero_is_the_plain_resnet(images, padding):
    """k_n = 0 (s_n = 1): LM-ResNet equals the Euler scheme, and a ResNet written by hand (for
    "symmetric": `ZeroPadding2D(1)` + "valid" before every 3x3 convolution, the official code's)."""
    lm = LMResNet(**TINY, padding=padding)
    _set_k(lm, 0.0)
    euler = LMResNet(**TINY, scheme="euler", padding=padding)
    euler.set_weights(lm.get_weights())
    reference = reference_resnet(14, 5, (16, 16, 3), width=4, padding=padding)
    copy_weights_by_name(lm, reference)
    expected = np.asarray(reference(images, training=False))
    np.testing.assert_allclose(np.asarray(lm(images, training=False)), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(euler(images, training=False)), expected)


@pytest.mark.parametrize(
    "padding,expected",
    [
        # windows of rows/columns (-1, 0, 1) and (1, 2, 3): 0+1+4+5, 1+2+3+5+6+7, 4+5+8+9+12+13, ...
        ("symmetric", [[10, 24], [51, 90]]),
        # Keras "same": windows (0, 1, 2) and (2, 3, 4): 0+1+2+4+5+6+8+9+10, 2+3+6+7+10+11, ...
        ("same", [[45, 39], [66, 50]]),
    ],
)
def test_stride_2_padding_by_hand(padding, expected):
    """A 3x3 all-ones kernel, stride 2, on the 4x4 image 0..15: the sums of the windows by hand."""
    x = keras.Input((4, 4, 1))
    layer = keras.Model(x, conv(x, 1, 3, 2, padding=padding, name="c", dtype=None))
    layer.get_layer("c").set_weights([np.ones((3, 3, 1, 1), "float32")])
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(np.asarray(layer(image))[0, :, :, 0], expected)


def test_every_convolution_pads_one_pixel_on_each_side(images):
    """Each 3x3 convolution of a block, the strided ones included, against NumPy with 1-pixel padding."""
    assert check_symmetric_padding(LMResNet(**TINY), images) == 2
    assert check_symmetric_padding(LMResNet(**{**TINY, "depth": 29, "block_type": "bottleneck"}), images) == 2
    with pytest.raises(AssertionError, match="stage2_block1_1_conv"):  # the check sees Keras' "same"
        check_symmetric_padding(LMResNet(**TINY, padding="same"), images)


def test_same_padding_changes_the_outputs_of_the_same_weights(images):
    """The legacy padding of presets saved before `padding` existed computes something else."""
    symmetric, same = LMResNet(**TINY), LMResNet(**TINY, padding="same")
    copy_weights_by_name(symmetric, same)
    difference = np.abs(
        np.asarray(symmetric(images, training=False)) - np.asarray(same(images, training=False))
    )
    assert difference.max() > 1e-3
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in same.layers)


@pytest.mark.parametrize("k", [1.0, -0.37])
def test_two_step_update_by_hand(images, k):
    """u_2 = (1 - k) u_1 + k u_0 + f(u_1); with k = 1 (s = 0): u_2 = u_0 + f(u_1)."""
    model = LMResNet(**TINY)
    _set_k(model, k)
    probe = keras.Model(
        model.inputs[0],
        [
            model.get_layer("stem_conv").output,  # u_0 (block 1 is plain: u_{-1} := u_0)
            model.get_layer("stage1_block1_add").output,  # u_1
            model.get_layer("stage1_block2_2_conv").output,  # f(u_1)
            model.get_layer("stage1_block2_lm").output,  # u_2
        ],
    )
    u0, u1, f, u2 = (np.asarray(t, "float64") for t in probe(images, training=False))
    np.testing.assert_allclose(u2, (1 - k) * u1 + k * u0 + f, atol=1e-5)
    assert not np.allclose(u2, u1 + f, atol=1e-3)


def test_projection_blocks_reset_the_previous_state(images):
    """After a shape-changing block, u_{n-1} is the projected input P(u_n)."""
    model = LMResNet(**TINY)
    _set_k(model, 1.0)
    probe = keras.Model(
        model.inputs[0],
        [
            model.get_layer("stage2_block1_proj_conv").output,
            model.get_layer("stage2_block2_2_conv").output,
            model.get_layer("stage2_block2_lm").output,
        ],
    )
    projected, f, u = (np.asarray(t, "float64") for t in probe(images, training=False))
    np.testing.assert_allclose(u, projected + f, atol=1e-5)


@pytest.mark.parametrize("depth,lm_blocks", [(20, 6), (32, 12), (56, 24)])
def test_parameter_counts(depth, lm_blocks):
    """LM-ResNet = ResNet + one scalar per LM block; the Euler mode keeps them frozen at 0."""
    kwargs = {"depth": depth, "num_classes": 10, "image_shape": (32, 32, 3)}
    lm, euler = LMResNet(**kwargs), LMResNet(**kwargs, scheme="euler")
    reference = reference_resnet(depth, 10, (32, 32, 3))
    assert lm.count_params() == reference.count_params() + lm_blocks
    assert euler.count_params() == lm.count_params()
    trainable = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_weights)  # noqa: E731
    assert trainable(lm) == trainable(reference) + lm_blocks == trainable(euler) + lm_blocks
    if depth == 20:
        # stem 432 + stages 14,208 / 51,968 / 206,336 + final BN 256 + head 650 (BN statistics
        # included; pre-activation projection shortcuts on the two shape-changing blocks).
        assert reference.count_params() == 273_850


def test_k_initialisation_and_gradient(images):
    model = LMResNet(**TINY)
    ks = np.array([float(layer.k.numpy()) for layer in model.layers if layer.name.endswith("_lm")])
    assert len(ks) == 3 and np.all((ks >= -0.1) & (ks <= 0.0))  # s = 1 - k in [1.0, 1.1]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.train_on_batch(images, np.array([1, 3]))
    after = np.array([float(layer.k.numpy()) for layer in model.layers if layer.name.endswith("_lm")])
    assert np.all(after != ks)


def test_euler_weights_warm_start_the_lm_scheme(images, tmp_path):
    """The official `pretrain` switch: train as a ResNet, then continue with the LM update."""
    euler = LMResNet(**TINY, scheme="euler")
    folder = euler.save_pretrained(tmp_path / "euler")
    lm = LMResNet.from_pretrained(folder, scheme="lm")
    np.testing.assert_array_equal(np.asarray(lm(images)), np.asarray(euler(images)))
    assert len(lm.trainable_weights) == len(euler.trainable_weights) + 3


def test_bottleneck_blocks(images):
    model = LMResNet(depth=29, block_type="bottleneck", num_classes=3, image_shape=(16, 16, 3), width=4)
    assert model(images).shape == (2, 3)
    # The stem's 4 channels go through a stride-1 projection to 4 * 4.
    assert model.get_layer("stage1_block1_proj_conv").kernel.shape == (1, 1, 4, 16)
    assert model.get_layer("stage3_block3_3_conv").kernel.shape[-1] == 64


def test_stochastic_depth_rates_and_inference(images):
    model = LMResNet(**TINY, death_rate=0.5)
    rates = [layer.rate for layer in model.layers if isinstance(layer, StochasticDepth)]
    np.testing.assert_allclose(rates, np.linspace(0, 0.5, 6))
    first, second = model(images, training=False), model(images, training=False)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    assert not np.allclose(np.asarray(model(images, training=True)), np.asarray(model(images, training=True)))


def test_stochastic_depth_is_unbiased():
    layer = StochasticDepth(0.3, seed=1)
    x = np.full((1, 4), 2.0, "float32")
    draws = np.stack([np.asarray(layer(x, training=True)) for _ in range(2000)])
    assert abs(np.mean(draws[:, 0, 0] == 0) - 0.3) < 0.04
    np.testing.assert_allclose(draws.mean(0), x, rtol=0.06)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"depth": 21}, "Received: depth=21"),
        ({"depth": 32, "block_type": "bottleneck"}, "9n + 2"),
        ({"depth": 20, "scheme": "rk5"}, "Received: scheme='rk5'"),
        ({"depth": 20, "death_rate": 1.0}, "Received: death_rate=1.0"),
        ({"depth": 20, "padding": "valid"}, "Received: padding='valid'"),
        ({"depth": 20, "mean": [0.5]}, "Give both `mean` and `std`"),
        ({"depth": 20, "image_shape": (32, 32)}, "Received: image_shape=(32, 32)"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LMResNet(**kwargs)


@pytest.mark.parametrize(
    "inputs,message",
    [
        (
            np.zeros((2, 28, 28, 1), "uint8"),
            r"received dtype uint8. Convert with `x.astype\('float32'\) / 255`",
        ),
        (np.zeros((28, 28, 1), "float32"), r"received \(28, 28, 1\). Add a batch axis"),
        (np.zeros((2, 28, 28), "float32"), r"received \(2, 28, 28\). Add a channel axis"),
        (np.zeros((2, 28, 28, 3), "float32"), "The images have 3 channels; the model takes 1"),
        (
            np.zeros((2, 32, 32, 1), "float32"),
            r"expects inputs of shape \(batch, 28, 28, 1\); received \(2, 32, 32, 1\)",
        ),
        (
            np.full((2, 28, 28, 1), 255.0, "float32"),
            r"values in \[0, 1\]; received values in \[255, 255\]. Divide 8-bit images by 255",
        ),
        (np.zeros((0, 28, 28, 1), "float32"), r"received an empty batch \(0 images of shape"),
        (np.full((2, 28, 28, 1), np.nan, "float32"), "received 1568 NaN/inf values in 2 images"),
    ],
)
def test_wrong_inputs_say_what_fits(inputs, message):
    """The same message from `predict` and from calling the model on a NumPy array."""
    model = LMResNet(depth=8, num_classes=10, image_shape=(28, 28, 1), width=4)
    with pytest.raises(OdezooError, match=message):
        model.predict(inputs, verbose=0)
    with pytest.raises(OdezooError, match=message):
        model(inputs)
