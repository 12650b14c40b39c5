"""LM-ResNet: a pre-activation CIFAR ResNet whose skip connections form a linear
two-step scheme (Lu, Zhong, Li, Dong, ICML 2018)."""

import keras
from keras import layers

from odezoo.errors import OdezooError
from odezoo.models._conv import PADDING_CHANGE, check_padding, conv
from odezoo.models._features import FeatureExtractorMixin
from odezoo.models._inputs import image_inputs
from odezoo.models.lm_resnet.lm_resnet_layers import SCHEMES, LinearMultistep, StochasticDepth
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.image_classification import ImageClassification, check_num_classes

BLOCK_TYPES = {"basic": (2, 1), "bottleneck": (3, 4)}  # (convs per block, expansion)


def check_block_layout(*, depth, scheme, block_type):
    """Raises `OdezooError` unless LM-ResNet can stack blocks of `block_type` to `depth` layers, joined by
    `scheme`."""
    if block_type not in BLOCK_TYPES:
        raise OdezooError(
            f"`block_type` must be one of {tuple(BLOCK_TYPES)}. Received: block_type={block_type!r}"
        )
    if scheme not in SCHEMES:
        raise OdezooError(f"`scheme` must be one of {SCHEMES}. Received: scheme={scheme!r}")
    convs, _ = BLOCK_TYPES[block_type]
    if not isinstance(depth, int) or depth < 3 * convs + 2 or (depth - 2) % (3 * convs):
        raise OdezooError(
            f"`depth` must be {3 * convs}n + 2 (n >= 1) for {block_type} blocks, e.g. "
            f"{', '.join(str(3 * convs * n + 2) for n in (3, 5, 9, 18))}. Received: depth={depth!r}"
        )


@keras.saving.register_keras_serializable(package="odezoo")
class LMResNet(PretrainedMixin, FeatureExtractorMixin, keras.Model):
    """Linear multi-step ResNet.

    A residual network is the forward-Euler scheme for `du/dt = f(u)`:
    `u_{n+1} = u_n + f(u_n)`. LM-ResNet uses the linear two-step scheme

        u_{n+1} = (1 - k_n) u_n + k_n u_{n-1} + f_n(u_n),

    with one trainable scalar `k_n` per block (`k_n = 0` is the ResNet). As in the
    official code, the first block and every block that changes shape are plain
    residual steps; after a projection block `u_{n-1}` is the projected input.
    `scheme="euler"` gives the plain pre-activation ResNet with the same weights.

    Blocks are pre-activation (BN-ReLU-conv), in three stages of widths
    `width, 2 width, 4 width` and strides 1, 2, 2; the stem is one 3x3 conv; the
    head is BN-ReLU-global average pool-dense. Every 3x3 convolution is padded by one
    pixel on each side, also the stride-2 ones, as in the official code (`padding`).
    Inputs are float images in [0, 1];
    `mean`/`std` normalisation happens inside the model, so exported artifacts take
    the same inputs.

    Args:
        depth: total depth; `6n + 2` for basic blocks, `9n + 2` for bottlenecks.
        num_classes: size of the classifier head (layer `"head"`, logits);
            `None` returns the pooled features.
        image_shape: `(height, width, channels)` of the input.
        scheme: `"lm"` (linear multi-step) or `"euler"` (plain ResNet).
        block_type: `"basic"` or `"bottleneck"` (expansion 4).
        width: channels of the first stage.
        death_rate: stochastic depth: block `i` of `N` is dropped with probability
            `i / (N - 1) * death_rate` during training (official value 0.5; 0 = off).
        mean: per-channel mean subtracted from the input, or `None`.
        std: per-channel standard deviation dividing the input, or `None`.
        padding: `"symmetric"` (the official code's `padding=1`: one pixel on each
            side of every 3x3 convolution) or `"same"` (Keras' padding: a stride-2
            convolution of an even-sized input pads 0 before and 1 after). `"same"`
            is what configs saved without this key (presets published before it)
            were trained with, and they load with it; their weights cannot be
            loaded with the other padding.

    Example:
        >>> model = odezoo.LMResNet.from_pretrained("lm_resnet20_fashion_mnist")
        >>> logits = model.predict(images)  # images: (batch, 28, 28, 1) in [0, 1]
        >>> model.feature_extractor()(images)  # {"stem", "stage_1", ..., "stage_3", "pooled"}

    Reference: https://arxiv.org/abs/1710.10121
    """

    TASK_CLASS = ImageClassification
    CITATION = """@inproceedings{lu2018beyond,
  title={Beyond Finite Layer Neural Networks: Bridging Deep Architectures and
         Numerical Differential Equations},
  author={Lu, Yiping and Zhong, Aoxiao and Li, Quanzheng and Dong, Bin},
  booktitle={International Conference on Machine Learning (ICML)},
  year={2018}
}"""
    LEGACY_CONFIG = {"padding": "same"}
    WEIGHT_BOUND_CONFIG = {"padding": PADDING_CHANGE}

    def __init__(
        self,
        *,
        depth,
        num_classes=None,
        image_shape=(32, 32, 3),
        scheme="lm",
        block_type="basic",
        width=16,
        death_rate=0.0,
        mean=None,
        std=None,
        padding="symmetric",
        dtype=None,
        **kwargs,
    ):
        check_num_classes(num_classes)
        check_block_layout(depth=depth, scheme=scheme, block_type=block_type)
        check_padding(padding)
        convs, expansion = BLOCK_TYPES[block_type]
        if not 0.0 <= death_rate < 1.0:
            raise ValueError(f"`death_rate` must be in [0, 1). Received: death_rate={death_rate}")
        blocks_per_stage = (depth - 2) // (3 * convs)
        residual_fn = _basic_residual if block_type == "basic" else _bottleneck_residual
        num_blocks = 3 * blocks_per_stage

        # === Functional Model ===
        inputs, x = image_inputs(image_shape, mean, std, dtype)
        x = conv(x, width, 3, 1, padding=padding, name="stem_conv", dtype=dtype)
        previous = x  # u_{-1} := u_0
        for stage in range(3):
            filters = width * 2**stage
            for j in range(blocks_per_stage):
                index = stage * blocks_per_stage + j
                stride = 2 if stage > 0 and j == 0 else 1
                name = f"stage{stage + 1}_block{j + 1}"
                residual = residual_fn(x, filters, stride, name, padding, dtype)
                if death_rate > 0.0:
                    rate = index / max(num_blocks - 1, 1) * death_rate
                    residual = StochasticDepth(rate, name=f"{name}_drop", dtype=dtype)(residual)
                if stride != 1 or x.shape[-1] != filters * expansion:
                    shortcut = _preact_conv(x, filters * expansion, 1, stride, f"{name}_proj", padding, dtype)
                    x, previous = layers.Add(name=f"{name}_add", dtype=dtype)([shortcut, residual]), shortcut
                elif index == 0:
                    x, previous = layers.Add(name=f"{name}_add", dtype=dtype)([x, residual]), x
                else:
                    step = LinearMultistep(scheme, name=f"{name}_lm", dtype=dtype)
                    x, previous = step([x, previous, residual]), x
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="final_bn", dtype=dtype)(x)
        x = layers.ReLU(name="final_relu", dtype=dtype)(x)
        x = layers.GlobalAveragePooling2D(name="pool", dtype=dtype)(x)
        if num_classes is not None:
            x = layers.Dense(num_classes, name="head", dtype=dtype)(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.set_config(
            dtype=dtype,
            depth=depth,
            num_classes=num_classes,
            image_shape=list(image_shape),
            scheme=scheme,
            block_type=block_type,
            width=width,
            death_rate=death_rate,
            mean=None if mean is None else [float(v) for v in mean],
            std=None if std is None else [float(v) for v in std],
            padding=padding,
        )

    def feature_layers(self):
        """`stem`: the stem convolution; `stage_k`: the output of stage k's last block (before the
        head's BN-ReLU for the last stage)."""
        names = {layer.name for layer in self.layers}
        blocks = (self.depth - 2) // (3 * BLOCK_TYPES[self.block_type][0])
        last = [f"stage{stage}_block{blocks}" for stage in (1, 2, 3)]
        return {
            "stem": "stem_conv",
            **{f"stage_{k}": f"{b}_lm" if f"{b}_lm" in names else f"{b}_add" for k, b in enumerate(last, 1)},
        }


def _preact_conv(x, filters, kernel_size, stride, name, padding, dtype):
    """BN -> ReLU -> conv; also the projection shortcut `P` of a shape-changing block."""
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn", dtype=dtype)(x)
    x = layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)
    return conv(x, filters, kernel_size, stride, padding=padding, name=f"{name}_conv", dtype=dtype)


def _basic_residual(x, filters, stride, name, padding, dtype):
    x = _preact_conv(x, filters, 3, stride, f"{name}_1", padding, dtype)
    return _preact_conv(x, filters, 3, 1, f"{name}_2", padding, dtype)


def _bottleneck_residual(x, filters, stride, name, padding, dtype):
    x = _preact_conv(x, filters, 1, 1, f"{name}_1", padding, dtype)
    x = _preact_conv(x, filters, 3, stride, f"{name}_2", padding, dtype)
    return _preact_conv(x, filters * 4, 1, 1, f"{name}_3", padding, dtype)
