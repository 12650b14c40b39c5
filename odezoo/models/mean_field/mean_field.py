"""Mean-field ResNet: a residual network whose blocks are averages of two-layer units and whose
depth is a time step (Lu, Ma, Lu, Lu, Ying, ICML 2020)."""

import keras
import numpy as np
from keras import layers

from odezoo.errors import OdezooError
from odezoo.models._features import FeatureExtractorMixin
from odezoo.models._inputs import image_inputs
from odezoo.models.mean_field.mean_field_layers import MeanFieldBlocks
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.image_classification import ImageClassification, check_num_classes

VARIANTS = ("conv", "dense")


@keras.saving.register_keras_serializable(package="odezoo")
class MeanFieldResNet(PretrainedMixin, FeatureExtractorMixin, keras.Model):
    """Mean-field ResNet classifier.

    The residual stack is forward Euler with step 1/L for the mean-field ODE
    `dX/dt = ∫ f(X; θ) ρ(θ, t) dθ`, each block's integral taken over M particles:

        X_{l+1} = X_l + (1/(L·M)) Σ_{m=1}^{M} a_{l,m} σ(w_{l,m} * X_l + b_{l,m}).

    `scaling="standard"` drops the 1/(L·M) and gives the standard ResNet of the same shape.
    `variant="conv"`: a stem of 3x3 convolutions (ReLU, strides `stem_strides`) to `channels`
    feature maps, the blocks as 3x3 convolutions, global average pooling, a dense head.
    `variant="dense"`: the image flattened and mapped linearly to `channels` features, the
    blocks as dense units, a dense head. Inputs are float images in [0, 1], normalised by
    `mean`/`std` inside the model.

    `reorder_blocks`, `grow` and `widen` return new models built from these weights; see
    `MeanFieldBlocks` for the layer.

    Args:
        num_blocks: L, the number of residual blocks (all of one shape, so any order runs).
        width: M, the hidden units of each block.
        channels: the features the blocks act on.
        num_classes: size of the head (layer `"head"`, logits); `None` returns the features.
        image_shape: `(height, width, channels)` of the input.
        variant: `"conv"` or `"dense"`.
        scaling: `"mean_field"` (1/(L·M)) or `"standard"` (1).
        activation: the particles' nonlinearity.
        shuffle_blocks: run the blocks in a random order at every training step.
        stem_strides: strides of the conv stem's convolutions (`"conv"` only).
        mean, std: per-channel input normalisation, or `None`.

    Example:
        >>> model = odezoo.load("mean_field_resnet8_fashion_mnist")
        >>> model.reorder_blocks([7, 6, 5, 4, 3, 2, 1, 0]).predict(images)

    Reference: https://arxiv.org/abs/2003.05508
    """

    TASK_CLASS = ImageClassification
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {"shuffle_blocks", "image_shape"}  # shuffle: training
    CITATION = """@inproceedings{lu2020mean,
  title={A Mean-field Analysis of Deep ResNet and Beyond: Towards Provable Optimization
         via Overparameterization from Depth},
  author={Lu, Yiping and Ma, Chao and Lu, Yulong and Lu, Jianfeng and Ying, Lexing},
  booktitle={International Conference on Machine Learning (ICML)},
  year={2020}
}"""

    def __init__(
        self,
        *,
        num_blocks,
        width,
        channels=32,
        num_classes=None,
        image_shape=(28, 28, 1),
        variant="conv",
        scaling="mean_field",
        activation="relu",
        shuffle_blocks=False,
        stem_strides=(2, 2),
        mean=None,
        std=None,
        dtype=None,
        **kwargs,
    ):
        check_num_classes(num_classes)
        if variant not in VARIANTS:
            raise OdezooError(f"`variant` must be one of {VARIANTS}. Received: variant={variant!r}")

        # === Functional Model ===
        inputs, x = image_inputs(image_shape, mean, std, dtype)
        if variant == "conv":
            for i, stride in enumerate(stem_strides):
                x = layers.Conv2D(
                    channels, 3, strides=stride, padding="same", activation="relu", name=f"stem{i + 1}",
                    dtype=dtype,
                )(x)  # fmt: skip
        else:
            x = layers.Flatten(name="flatten", dtype=dtype)(x)
            x = layers.Dense(channels, name="embed", dtype=dtype)(x)
        x = MeanFieldBlocks(
            num_blocks,
            width,
            kernel_size=3 if variant == "conv" else None,
            scaling=scaling,
            activation=activation,
            shuffle=shuffle_blocks,
            name="blocks",
            dtype=dtype,
        )(x)
        if variant == "conv":
            x = layers.GlobalAveragePooling2D(name="pool", dtype=dtype)(x)
        if num_classes is not None:
            x = layers.Dense(num_classes, name="head", dtype=dtype)(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.set_config(
            dtype=dtype,
            num_blocks=num_blocks,
            width=width,
            channels=channels,
            num_classes=num_classes,
            image_shape=list(image_shape),
            variant=variant,
            scaling=scaling,
            activation=activation,
            shuffle_blocks=bool(shuffle_blocks),
            stem_strides=list(stem_strides),
            mean=None if mean is None else [float(v) for v in mean],
            std=None if std is None else [float(v) for v in std],
        )

    def feature_layers(self):
        """`stem`: the last stem convolution (`"conv"`; none without one) or the linear embedding
        (`"dense"`); `blocks`: the output of the L residual blocks, `X_L`."""
        if self.variant == "dense":
            return {"stem": "embed", "blocks": "blocks"}
        return {
            **({"stem": f"stem{len(self.stem_strides)}"} if self.stem_strides else {}),
            "blocks": "blocks",
        }

    def reorder_blocks(self, permutation):
        """The same network with its blocks run in another order: new block `i` is old block
        `permutation[i]`. The first-order (ensemble) term `X_0 + (1/L) Σ_l f(X_0; θ_l)` does not
        depend on the order; orders differ at second order in the blocks' size."""
        permutation = list(permutation)
        if sorted(permutation) != list(range(self.num_blocks)) or not all(
            isinstance(i, (int, np.integer)) for i in permutation
        ):
            raise OdezooError(
                f"`permutation` must be a permutation of the {self.num_blocks} block indices "
                f"0..{self.num_blocks - 1}. Received: permutation={permutation!r}"
            )
        index = np.asarray(permutation, "int64")
        return self._rebuilt({}, lambda kernel, bias, output: (kernel[index], bias[index], output[index]))

    def grow(self, depth_factor):
        """The same ODE on a finer time grid: every block repeated `depth_factor` times in a row,
        L -> depth_factor·L. Under mean-field scaling the step 1/L shrinks with it; under
        standard scaling the output weights are divided by `depth_factor` to the same effect.
        The output moves by O(1/L)."""
        factor = _check_factor("depth_factor", depth_factor)
        shrink = 1.0 if self.scaling == "mean_field" else 1.0 / factor
        return self._rebuilt(
            {"num_blocks": self.num_blocks * factor},
            lambda kernel, bias, output: (
                np.repeat(kernel, factor, axis=0),
                np.repeat(bias, factor, axis=0),
                np.repeat(output, factor, axis=0) * shrink,
            ),
        )

    def widen(self, width_factor):
        """Every particle repeated `width_factor` times, M -> width_factor·M, the 1/M average
        (or, under standard scaling, the output weights) rescaled: the same function."""
        factor = _check_factor("width_factor", width_factor)
        shrink = 1.0 if self.scaling == "mean_field" else 1.0 / factor
        return self._rebuilt(
            {"width": self.width * factor},
            lambda kernel, bias, output: (
                np.concatenate([kernel] * factor, axis=-1),
                np.concatenate([bias] * factor, axis=-1),
                np.concatenate([output] * factor, axis=1) * shrink,
            ),
        )

    def _rebuilt(self, changes, transform):
        """A new model with config `changes` and this model's weights, the blocks' through `transform`."""
        config = {**self.get_config(), **changes}
        model = type(self).from_config(config)
        for layer in model.layers:
            if not layer.weights:
                continue
            weights = self.get_layer(layer.name).get_weights()
            if isinstance(layer, MeanFieldBlocks):
                weights = [w.astype(weights[0].dtype) for w in transform(*weights)]
            layer.set_weights(weights)
        return model


def _check_factor(name, factor):
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise OdezooError(f"`{name}` must be a positive integer. Received: {name}={factor!r}")
    return int(factor)
