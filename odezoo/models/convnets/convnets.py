"""The classifiers of YOPO's experiments (docs/papers.md#yopo-hamiltonian): SmallCNN, PreActResNet18,
WideResNet.

Each is a residual network read as forward Euler, `x_{t+1} = x_t + f_t(x_t)` (SmallCNN is the
plain feed-forward case); YOPO perturbs only the first layer `f_0`, named `first_layer` here.
Inputs are float images in [0, 1] (normalisation, if any, happens inside the model). The residual
networks pad every 3x3 convolution by one pixel on each side, as the official code does (`padding`).
"""

import keras
from keras import layers

from odezoo.errors import OdezooError
from odezoo.models._conv import PADDING_CHANGE, check_padding, conv
from odezoo.models._features import FeatureExtractorMixin
from odezoo.models._inputs import image_inputs
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.image_classification import ImageClassification, check_num_classes


def _bn_relu(x, name, dtype):
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn", dtype=dtype)(x)
    return layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)


def _preact_block(x, filters, stride, name, padding, dtype, dropout=0.0):
    """Pre-activation block `x + conv(relu(bn(conv(relu(bn(x))))))`, projected when the shape changes."""
    pre = _bn_relu(x, f"{name}_1", dtype)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv(pre, filters, 1, stride, padding=padding, name=f"{name}_proj", dtype=dtype)
    y = conv(pre, filters, 3, stride, padding=padding, name=f"{name}_1_conv", dtype=dtype)
    y = _bn_relu(y, f"{name}_2", dtype)
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}_drop", dtype=dtype)(y)
    y = conv(y, filters, 3, 1, padding=padding, name=f"{name}_2_conv", dtype=dtype)
    return layers.Add(name=f"{name}_add", dtype=dtype)([shortcut, y])


class _Classifier(PretrainedMixin, FeatureExtractorMixin, keras.Model):
    TASK_CLASS = ImageClassification
    first_layer = "conv1"  # where YOPO's f0 ends

    def feature_layers(self):
        """`stem`: `conv1`; `stage_k`: the output of stage k's last block (before the head's BN-ReLU,
        where there is one, for the last stage)."""
        adds = [
            layer.name
            for layer in self.layers
            if layer.name.startswith("stage") and layer.name.endswith("_add")
        ]
        last = {name.split("_")[0]: name for name in adds}  # in network order: each stage's last block wins
        return {"stem": "conv1", **{f"stage_{k}": name for k, name in enumerate(last.values(), 1)}}

    def _finish(self, inputs, outputs, dtype, kwargs, **config):
        """Builds the functional model and keeps its constructor arguments as its config."""
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        self.set_config(dtype=dtype, **{**config, "image_shape": list(config["image_shape"])})


@keras.saving.register_keras_serializable(package="odezoo")
class SmallCNN(_Classifier):
    """YOPO's MNIST network: conv32-conv32-pool-conv64-conv64-pool (3x3 valid, ReLU), FC 200-200-classes.

    f0 = conv1 followed by its ReLU (`first_layer = "relu1"`), as in the official code. Dropout 0.5
    after the first dense layer; the last dense layer starts at zero.
    """

    first_layer = "relu1"

    def __init__(self, *, num_classes=10, image_shape=(28, 28, 1), mean=None, std=None, dtype=None, **kwargs):
        check_num_classes(num_classes)
        inputs, x = image_inputs(image_shape, mean, std, dtype)
        for k, filters in enumerate((32, 32, 64, 64), start=1):
            x = layers.Conv2D(
                filters, 3, name=f"conv{k}", dtype=dtype, kernel_initializer=keras.initializers.HeNormal()
            )(x)
            x = layers.ReLU(name=f"relu{k}", dtype=dtype)(x)
            if k % 2 == 0:
                x = layers.MaxPooling2D(2, name=f"pool{k // 2}", dtype=dtype)(x)
        x = layers.Flatten(name="flatten", dtype=dtype)(x)
        x = layers.Dense(200, activation="relu", name="fc1", dtype=dtype)(x)
        x = layers.Dropout(0.5, name="drop", dtype=dtype)(x)
        x = layers.Dense(200, activation="relu", name="fc2", dtype=dtype)(x)
        x = layers.Dense(num_classes, kernel_initializer="zeros", name="head", dtype=dtype)(x)
        config = {"num_classes": num_classes, "image_shape": image_shape, "mean": mean, "std": std}
        self._finish(inputs, x, dtype, kwargs, **config)

    def feature_layers(self):
        """`stage_1`, `stage_2`: the outputs of the two conv-conv-pool stages (`"pooled"` is then the
        200 features of `fc2`, which the head takes)."""
        return {"stage_1": "pool1", "stage_2": "pool2"}


@keras.saving.register_keras_serializable(package="odezoo")
class PreActResNet18(_Classifier):
    """Pre-activation ResNet-18 (He et al. 2016, CIFAR layout): conv3x3 64, four stages of two
    pre-activation blocks (64, 128, 256, 512; strides 1, 2, 2, 2), global average pool, dense.
    f0 = `conv1` (3 -> 64, no bias).

    YOPO's official network pools the last stage's output directly; `final_bn_relu=True` adds a
    BN-ReLU before the pooling (the usual pre-activation head, and what configs saved without the
    key had). The recipes (`odezoo.recipes.convnets`, `preact_resnet18_*`) use the default, the
    official network.

    Args:
        num_classes: size of the classifier head (layer `"head"`, logits).
        image_shape: `(height, width, channels)` of the input.
        mean: per-channel mean subtracted from the input, or `None`.
        std: per-channel standard deviation dividing the input, or `None`.
        padding: `"symmetric"` (the official code's `padding=1` on every 3x3 convolution) or
            `"same"` (Keras': a stride-2 convolution of an even-sized input pads 0 before and 1
            after; what configs saved without the key had).
        final_bn_relu: whether a BN-ReLU follows the last stage.
    """

    LEGACY_CONFIG = {"padding": "same", "final_bn_relu": True}
    OVERRIDE_NOTES = {"padding": PADDING_CHANGE}
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {"image_shape"}  # convolutions and a global pool

    def __init__(
        self,
        *,
        num_classes=10,
        image_shape=(32, 32, 3),
        mean=None,
        std=None,
        padding="symmetric",
        final_bn_relu=False,
        dtype=None,
        **kwargs,
    ):
        check_num_classes(num_classes)
        check_padding(padding)
        if not isinstance(final_bn_relu, bool):
            raise ValueError(
                f"`final_bn_relu` must be True or False. Received: final_bn_relu={final_bn_relu!r}"
            )
        inputs, x = image_inputs(image_shape, mean, std, dtype)
        x = conv(x, 64, 3, 1, padding=padding, name="conv1", dtype=dtype)
        for stage, filters in enumerate((64, 128, 256, 512)):
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                x = _preact_block(x, filters, stride, f"stage{stage + 1}_block{block + 1}", padding, dtype)
        if final_bn_relu:
            x = _bn_relu(x, "final", dtype)
        x = layers.GlobalAveragePooling2D(name="pool", dtype=dtype)(x)
        x = layers.Dense(num_classes, name="head", dtype=dtype)(x)
        config = {"num_classes": num_classes, "image_shape": image_shape, "mean": mean, "std": std}
        self._finish(inputs, x, dtype, kwargs, **config, padding=padding, final_bn_relu=final_bn_relu)


@keras.saving.register_keras_serializable(package="odezoo")
class WideResNet(_Classifier):
    """Wide ResNet (Zagoruyko & Komodakis 2016): conv3x3 16, three stages of `(depth - 4) / 6`
    pre-activation blocks of width 16k, 32k, 64k (strides 1, 2, 2), BN-ReLU, pool, dense.
    WRN-34-10 (`depth=34, widen_factor=10`) is YOPO's CIFAR-10 network. f0 = `conv1`. `padding`: as
    in `PreActResNet18` (`"symmetric"`, the official code's, by default)."""

    LEGACY_CONFIG = {"padding": "same"}
    OVERRIDE_NOTES = {"padding": PADDING_CHANGE}
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {"image_shape"}  # convolutions and a global pool

    def __init__(
        self,
        *,
        depth=34,
        widen_factor=10,
        dropout=0.0,
        num_classes=10,
        image_shape=(32, 32, 3),
        mean=None,
        std=None,
        padding="symmetric",
        dtype=None,
        **kwargs,
    ):
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"`depth` must be 6n + 4 (n >= 1), e.g. 16, 28, 34. Received: depth={depth}")
        check_num_classes(num_classes)
        check_padding(padding)
        inputs, x = image_inputs(image_shape, mean, std, dtype)
        x = conv(x, 16, 3, 1, padding=padding, name="conv1", dtype=dtype)
        for stage, width in enumerate((16, 32, 64)):
            for block in range((depth - 4) // 6):
                stride = 2 if stage > 0 and block == 0 else 1
                name = f"stage{stage + 1}_block{block + 1}"
                x = _preact_block(x, width * widen_factor, stride, name, padding, dtype, dropout)
        x = _bn_relu(x, "final", dtype)
        x = layers.GlobalAveragePooling2D(name="pool", dtype=dtype)(x)
        x = layers.Dense(num_classes, name="head", dtype=dtype)(x)
        self._finish(
            inputs, x, dtype, kwargs, depth=depth, widen_factor=widen_factor, dropout=dropout,
            num_classes=num_classes, image_shape=image_shape, mean=mean, std=std, padding=padding,
        )  # fmt: skip


# YOPO's networks by config name (docs/papers.md#yopo-hamiltonian); WRN-34-10 is the paper's CIFAR-10 network.
ARCHITECTURES = {
    "small_cnn": (SmallCNN, {}),
    "preact_resnet18": (PreActResNet18, {}),
    "wrn34_10": (WideResNet, {"depth": 34, "widen_factor": 10}),
}


def check_architecture_name(architecture):
    """Raises `OdezooError` unless `architecture` names a network of `ARCHITECTURES`."""
    if architecture not in ARCHITECTURES:
        raise OdezooError(f"Unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}.")


def build_classifier(architecture, **kwargs):
    """The network named `architecture` in `ARCHITECTURES`, e.g. `build_classifier("wrn34_10")`
    is WRN-34-10 for CIFAR-10; `kwargs` go to its constructor (`num_classes`, `image_shape`, ...)."""
    check_architecture_name(architecture)
    cls, defaults = ARCHITECTURES[architecture]
    return cls(**defaults, **kwargs)
