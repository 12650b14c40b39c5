"""Transfer-learning hooks (issue 27): the image classifiers' feature extractors, the public image
preprocessing, mixed-precision training in the image recipes."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import odezoo
from odezoo import LMResNet, MeanFieldResNet, OdezooError, PreActResNet18, SmallCNN, WideResNet
from odezoo.data.images import preprocess_images
from odezoo.recipes import convnets, lm_resnet, mean_field
from odezoo.tasks.image_classification import ImageClassification, bundled_sample, read_images


def _residual(size, stem, widths):
    """The features of a residual net: the stem, then stages halving the size from the second on."""
    stages = {f"stage_{k}": (size >> (k - 1), size >> (k - 1), w) for k, w in enumerate(widths, 1)}
    return {"stem": (size, size, stem), **stages, "pooled": (widths[-1],)}


# model, {feature: shape without the batch axis}
FAMILIES = {
    "lm_resnet": (
        lambda: LMResNet(depth=8, width=4, num_classes=3, image_shape=(8, 8, 1)),
        _residual(8, 4, (4, 8, 16)),
    ),
    "lm_resnet_bottleneck": (
        lambda: LMResNet(depth=20, block_type="bottleneck", width=2, num_classes=3, image_shape=(8, 8, 1)),
        _residual(8, 2, (8, 16, 32)),
    ),
    "small_cnn": (
        lambda: SmallCNN(num_classes=3),
        {"stage_1": (12, 12, 32), "stage_2": (4, 4, 64), "pooled": (200,)},
    ),
    "preact_resnet18": (
        lambda: PreActResNet18(num_classes=3, image_shape=(16, 16, 3)),
        _residual(16, 64, (64, 128, 256, 512)),
    ),
    "wide_resnet": (
        lambda: WideResNet(depth=16, widen_factor=1, num_classes=3, image_shape=(8, 8, 3)),
        _residual(8, 16, (16, 32, 64)),
    ),
    "mean_field": (
        lambda: MeanFieldResNet(num_blocks=2, width=4, channels=5, num_classes=3, image_shape=(8, 8, 1)),
        {"stem": (2, 2, 5), "blocks": (2, 2, 5), "pooled": (5,)},
    ),
    "mean_field_dense": (
        lambda: MeanFieldResNet(
            num_blocks=2, width=4, channels=5, num_classes=3, image_shape=(8, 8, 1), variant="dense"
        ),
        {"stem": (5,), "blocks": (5,), "pooled": (5,)},
    ),
}


def _images(model, count=2):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(0).uniform(size=(count, *shape)).astype("float32")


def _randomize(model):
    """Random weights everywhere (SmallCNN's head starts at zero, which would hide a wrong feature)."""
    rng = np.random.default_rng(1)
    for variable in model.weights:
        value = rng.normal(0.0, 0.3, variable.shape)
        if "variance" in variable.path:
            value = np.abs(value) + 0.5
        variable.assign(value.astype(variable.dtype))


@pytest.mark.parametrize("family", FAMILIES)
def test_feature_extractor_returns_the_stage_maps_and_the_pooled_features_the_head_takes(family):
    build, shapes = FAMILIES[family]
    model = build()
    _randomize(model)
    x = _images(model)
    features = model.feature_extractor()(x)
    assert list(features) == list(shapes)
    assert {name: tuple(value.shape) for name, value in features.items()} == {
        name: (2, *shape) for name, shape in shapes.items()
    }
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    head = keras.ops.convert_to_numpy(model.get_layer("head")(features["pooled"]))
    np.testing.assert_array_equal(head, logits)
    assert np.std(logits) > 0


def test_the_feature_extractor_shares_the_model_weights():
    model = FAMILIES["lm_resnet"][0]()
    extractor = model.feature_extractor()
    assert {id(v) for v in extractor.weights} <= {id(v) for v in model.weights}
    x = _images(model)
    before = keras.ops.convert_to_numpy(extractor(x)["pooled"])
    kernel = model.get_layer("stem_conv").kernel
    kernel.assign(kernel * 2.0 + 0.1)
    after = keras.ops.convert_to_numpy(extractor(x)["pooled"])
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("head")(after)),
        keras.ops.convert_to_numpy(model(x, training=False)),
    )


def test_a_headless_model_pools_to_its_own_output():
    model = LMResNet(depth=8, width=4, num_classes=None, image_shape=(8, 8, 1))
    x = _images(model)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.feature_extractor()(x)["pooled"]),
        keras.ops.convert_to_numpy(model(x)),
    )


class _Recorder:
    """Stands in for a model in `odezoo predict`: records what the task feeds it."""

    def __init__(self, shape):
        self.inputs = [keras.KerasTensor((None, *shape))]
        self.fed = None

    def predict(self, images, verbose=0):
        self.fed = images
        return np.zeros((len(images), 10), "float32")


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_preprocess_images_is_what_odezoo_predict_feeds_the_model(tmp_path, shape):
    image = (bundled_sample(1)[0][0] * 255).round().astype("uint8")
    gray, rgb = tmp_path / "gray.png", tmp_path / "rgb.png"
    tf.io.write_file(str(gray), tf.io.encode_png(image))
    colour = np.concatenate([image, image[::-1], image[:, ::-1]], axis=-1)
    tf.io.write_file(str(rgb), tf.io.encode_png(np.repeat(colour, 2, axis=0)))  # 56 x 28 x 3
    model = _Recorder(shape)
    ImageClassification.instance().predict(model, {}, [str(gray), str(rgb)])
    ours = preprocess_images([gray, str(rgb)], model)
    assert ours.dtype == np.float32 and ours.shape == (2, *shape)
    np.testing.assert_array_equal(ours, model.fed)
    np.testing.assert_array_equal(ours, read_images([gray, rgb], shape))
    np.testing.assert_array_equal(preprocess_images(str(gray), shape), ours[:1])  # one file alone


def test_preprocess_images_takes_arrays_as_their_files_decode():
    images, _ = bundled_sample(3)
    raw = (images * 255).round().astype("uint8")
    np.testing.assert_array_equal(preprocess_images(raw, (28, 28, 1)), images)  # a uint8 batch
    np.testing.assert_array_equal(preprocess_images(list(raw[..., 0]), (28, 28, 1)), images)  # 2-D
    np.testing.assert_array_equal(preprocess_images(images[0], (28, 28, 1)), images[:1])
    assert preprocess_images(raw, (14, 14, 3)).shape == (3, 14, 14, 3)
    assert odezoo.preprocess_images is preprocess_images
    with pytest.raises(OdezooError, match="0..255"):
        preprocess_images(raw.astype("int32") * 2, (28, 28, 1))


class _Precision(keras.callbacks.Callback):
    """Records how the recipe's model trains: its policy, its head's compute dtype, its optimizer."""

    def on_train_begin(self, logs=None):
        model = getattr(self.model, "model", self.model)  # the adversarial trainer wraps the network
        names = {layer.name for layer in model.layers}
        self.seen = (
            model.get_layer("flatten" if "flatten" in names else "pool").dtype_policy.name,
            model.get_layer("head").compute_dtype,
            type(self.model.optimizer).__name__,
        )


def _check_float32_preset(folder, config):
    saved = json.loads((folder / "config.json").read_text())["config"]
    assert saved["dtype"]["config"]["name"] == "float32"
    meta = json.loads((folder / "metadata.json").read_text())
    assert (
        meta["recipe_config"]["dtype"] == config.dtype
        and f"--set dtype={config.dtype}" in meta["train_command"]
    )
    model = odezoo.load(folder)
    assert model.dtype_policy.name == "float32" and all(v.dtype == "float32" for v in model.weights)
    assert model.predict(bundled_sample(2)[0][:, :, :, :], verbose=0).dtype == np.float32


def test_lm_resnet_trains_in_mixed_float16_with_a_loss_scale_and_writes_a_float32_preset(tmp_path):
    config = replace(
        lm_resnet.FASHION_MNIST, depth=8, width=4, epochs=1, batch_size=2, limit=4, dtype="mixed_float16"
    )
    recorder = _Precision()
    with tfds.testing.mock_data(num_examples=8):
        summary = lm_resnet.train(config, tmp_path, callbacks=[recorder])
    assert recorder.seen == ("mixed_float16", "float32", "LossScaleOptimizer")
    assert np.isfinite(summary["test_loss"])
    _check_float32_preset(tmp_path / "lm_resnet8_fashion_mnist", config)


def test_mean_field_trains_in_mixed_bfloat16_and_writes_a_float32_preset(tmp_path):
    config = replace(
        mean_field.MEAN_FIELD, num_blocks=2, width=3, channels=4, epochs=1, batch_size=4, limit=8, orders=0,
        dtype="mixed_bfloat16",
    )  # fmt: skip
    recorder = _Precision()
    summary = mean_field.train(config, tmp_path, callbacks=[recorder])
    assert recorder.seen == ("mixed_bfloat16", "float32", "Adam")
    assert np.isfinite(summary["test_loss"])
    _check_float32_preset(tmp_path / "mean_field_resnet2_w3_fashion_mnist", config)


def test_the_dtype_setting_is_checked_before_the_workdir_is_written(tmp_path):
    assert lm_resnet.FASHION_MNIST.dtype == "float32"  # the default, as before
    typed = lm_resnet.FASHION_MNIST.configure({"dtype": "mixed_bfloat16"}, "lm_resnet20_fashion_mnist")
    assert typed.dtype == "mixed_bfloat16"
    with pytest.raises(OdezooError, match="`dtype` must be one of"):
        lm_resnet.train(replace(lm_resnet.FASHION_MNIST, dtype="float16"), tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.slow  # two adversarial training runs in emulated half precision
@pytest.mark.parametrize(
    ("dtype", "optimizer"), [("mixed_bfloat16", "SGD"), ("mixed_float16", "LossScaleOptimizer")]
)
def test_convnets_train_in_mixed_precision_through_the_adversarial_trainer(tmp_path, dtype, optimizer):
    config = replace(convnets.FASHION_MNIST["natural"], epochs=1, batch_size=4, limit=4, dtype=dtype)
    recorder = _Precision()
    with tfds.testing.mock_data(num_examples=8):
        summary = convnets.train(config, tmp_path, callbacks=[recorder])
    assert recorder.seen == (dtype, "float32", optimizer)
    assert 0.0 <= summary["robust_accuracy"] <= 1.0
    _check_float32_preset(tmp_path / "small_cnn_natural_fashion_mnist", config)
