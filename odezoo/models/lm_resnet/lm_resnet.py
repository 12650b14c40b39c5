"""LM-ResNet: a pre-activation CIFAR ResNet whose skip connections form a linear
two-step scheme (Lu, Zhong, Li, Dong, ICML 2018), or any scheme of `odezoo.models._schemes`."""

import keras
from keras import layers

from odezoo.errors import OdezooError
from odezoo.models._conv import PADDING_CHANGE, check_padding, conv, conv_layers
from odezoo.models._features import FeatureExtractorMixin
from odezoo.models._inputs import image_inputs
from odezoo.models._schemes import SCHEMES
from odezoo.models.lm_resnet.lm_resnet_layers import SCHEMES as TWO_STEP_SCHEMES
from odezoo.models.lm_resnet.lm_resnet_layers import LinearMultistep, StochasticDepth
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.image_classification import ImageClassification, check_num_classes

BLOCK_TYPES = {"basic": (2, 1), "bottleneck": (3, 4)}  # (convs per block, expansion)


def check_block_layout(*, depth, scheme, block_type, stage_sharing=True, death_rate=0.0):
    """Raises `OdezooError` unless LM-ResNet can stack blocks of `block_type` to `depth` layers, joined by
    `scheme` into steps (`stage_sharing`), with stochastic depth (`death_rate`) only where a step is one
    block evaluated once."""
    if block_type not in BLOCK_TYPES:
        raise OdezooError(
            f"`block_type` must be one of {tuple(BLOCK_TYPES)}. Received: block_type={block_type!r}"
        )
    if scheme not in SCHEMES:
        raise OdezooError(f"`scheme` must be one of {tuple(SCHEMES)}. Received: scheme={scheme!r}")
    convs, _ = BLOCK_TYPES[block_type]
    if not isinstance(depth, int) or depth < 3 * convs + 2 or (depth - 2) % (3 * convs):
        raise OdezooError(
            f"`depth` must be {3 * convs}n + 2 (n >= 1) for {block_type} blocks, e.g. "
            f"{', '.join(str(3 * convs * n + 2) for n in (3, 5, 9, 18))}. Received: depth={depth!r}"
        )
    blocks, size = (depth - 2) // (3 * convs), _blocks_per_step(scheme, stage_sharing)
    if (blocks - 1) % size:
        raise OdezooError(
            f"With stage_sharing=False a step of scheme {scheme!r} is {size} consecutive blocks, after the "
            f"first block of each stage, so a stage needs {size}m + 1 blocks: depth "
            f"{', '.join(str(3 * convs * (size * m + 1) + 2) for m in (1, 2, 3))}, ... for {block_type} "
            f"blocks. Received: depth={depth} ({blocks} blocks per stage). Or keep stage_sharing=True "
            "(one block per step, evaluated at every stage)."
        )
    if death_rate and scheme not in TWO_STEP_SCHEMES:
        raise OdezooError(
            f"Stochastic depth drops a block from a step, which only the schemes {TWO_STEP_SCHEMES} (one "
            f"evaluation per step) allow. Received: death_rate={death_rate}, scheme={scheme!r}. Use "
            "death_rate=0 with this scheme."
        )


def _blocks_per_step(scheme, stage_sharing):
    """1 when a step evaluates one block at all its stages, else the scheme's number of stages."""
    return 1 if stage_sharing else SCHEMES[scheme].evaluations


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

    The other blocks may follow any scheme of `odezoo.models._schemes` (`"heun"`,
    `"midpoint"`, `"rk4"`, `"backward_euler"`: explicit Runge-Kutta tableaux) at the
    same number of parameters as the Euler ResNet of this depth. With
    `stage_sharing=True` (the textbook integrator) each block is one step whose
    residual function `f` is evaluated at every stage (`rk4`: 4 evaluations, 4x the
    FLOPs of a block; the batch-norm statistics are shared by the stages). With
    `stage_sharing=False` a step's stages are consecutive blocks ("higher-order
    stacking": the FLOPs of the Euler ResNet, fewer steps), so each stage needs
    `s m + 1` blocks for an `s`-stage scheme.

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
        scheme: `"lm"` (linear multi-step), `"euler"` (plain ResNet), `"heun"`,
            `"midpoint"`, `"rk4"` or `"backward_euler"` (2 fixed-point iterations);
            their orders and stability in `odezoo/models/_schemes.py`.
        stage_sharing: a Runge-Kutta step evaluates one block at all its stages
            (`True`) or one block per stage (`False`); no effect on `"lm"`/`"euler"`.
        block_type: `"basic"` or `"bottleneck"` (expansion 4).
        width: channels of the first stage.
        death_rate: stochastic depth: block `i` of `N` is dropped with probability
            `i / (N - 1) * death_rate` during training (official value 0.5; 0 = off);
            `"lm"` and `"euler"` only.
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
    LEGACY_CONFIG = {"padding": "same", "stage_sharing": True}
    OVERRIDE_NOTES = {"padding": PADDING_CHANGE}
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {"image_shape"}  # convolutions and a global pool
    SAFE_CHANGES = (("scheme", "euler", "lm"),)  # k = 0, the Euler step: the official warm start

    def __init__(
        self,
        *,
        depth,
        num_classes=None,
        image_shape=(32, 32, 3),
        scheme="lm",
        stage_sharing=True,
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
        check_block_layout(
            depth=depth,
            scheme=scheme,
            block_type=block_type,
            stage_sharing=stage_sharing,
            death_rate=death_rate,
        )
        check_padding(padding)
        convs, expansion = BLOCK_TYPES[block_type]
        if not 0.0 <= death_rate < 1.0:
            raise OdezooError(f"`death_rate` must be in [0, 1). Received: death_rate={death_rate}")
        blocks_per_stage = (depth - 2) // (3 * convs)
        size = _blocks_per_step(scheme, stage_sharing)
        num_blocks = 3 * blocks_per_stage

        def branch(x, index, filters, stride, name):
            residual = _residual_branch(block_type, filters, stride, name, padding, dtype)(x)
            if death_rate > 0.0:
                rate = index / max(num_blocks - 1, 1) * death_rate
                residual = StochasticDepth(rate, name=f"{name}_drop", dtype=dtype)(residual)
            return residual

        # === Functional Model ===
        inputs, x = image_inputs(image_shape, mean, std, dtype)
        x = conv(x, width, 3, 1, padding=padding, name="stem_conv", dtype=dtype)
        previous = x  # u_{-1} := u_0
        for stage in range(3):
            filters, stride, name = width * 2**stage, 2 if stage else 1, f"stage{stage + 1}_block1"
            residual = branch(x, stage * blocks_per_stage, filters, stride, name)
            if stride != 1 or x.shape[-1] != filters * expansion:
                projection = _preact_layers(filters * expansion, 1, stride, f"{name}_proj", padding, dtype)
                shortcut = _chain(projection)(x)
                x, previous = layers.Add(name=f"{name}_add", dtype=dtype)([shortcut, residual]), shortcut
            else:  # the first block of the network
                x, previous = layers.Add(name=f"{name}_add", dtype=dtype)([x, residual]), x
            for j in range(1, blocks_per_stage, size):  # the steps, `size` blocks each
                name = f"stage{stage + 1}_block{j + 1}"
                if scheme in TWO_STEP_SCHEMES:
                    residual = branch(x, stage * blocks_per_stage + j, filters, 1, name)
                    step = LinearMultistep(scheme, name=f"{name}_lm", dtype=dtype)
                    x, previous = step([x, previous, residual]), x
                else:
                    functions = [
                        _residual_branch(
                            block_type, filters, 1, f"stage{stage + 1}_block{j + i + 1}", padding, dtype
                        )
                        for i in range(size)
                    ]
                    evaluations = SCHEMES[scheme].evaluations
                    x = SCHEMES[scheme].step(
                        x, functions * (evaluations // size), name=f"{name}_{scheme}", dtype=dtype
                    )
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
            stage_sharing=stage_sharing,
            block_type=block_type,
            width=width,
            death_rate=death_rate,
            mean=None if mean is None else [float(v) for v in mean],
            std=None if std is None else [float(v) for v in std],
            padding=padding,
        )

    def feature_layers(self):
        """`stem`: the stem convolution; `stage_k`: the output of stage k's last step (before the
        head's BN-ReLU for the last stage)."""
        blocks = (self.depth - 2) // (3 * BLOCK_TYPES[self.block_type][0])
        last = blocks + 1 - _blocks_per_step(self.scheme, self.stage_sharing)  # the last step's first block
        tail = "lm" if self.scheme in TWO_STEP_SCHEMES else self.scheme
        return {
            "stem": "stem_conv",
            **{
                f"stage_{k}": f"stage{k}_block{last}_{tail}" if blocks > 1 else f"stage{k}_block1_add"
                for k in (1, 2, 3)
            },
        }


def _chain(chain):
    """The function applying the layers `chain` in order; every call reuses them (and their weights)."""

    def apply(x):
        for layer in chain:
            x = layer(x)
        return x

    return apply


def _preact_layers(filters, kernel_size, stride, name, padding, dtype):
    """BN -> ReLU -> conv; also the projection shortcut `P` of a shape-changing block."""
    return [
        layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn", dtype=dtype),
        layers.ReLU(name=f"{name}_relu", dtype=dtype),
        *conv_layers(filters, kernel_size, stride, padding=padding, name=f"{name}_conv", dtype=dtype),
    ]


def _residual_branch(block_type, filters, stride, name, padding, dtype):
    """The residual function `f` of block `name`, its layers made once: a step may evaluate it at each of
    its stages. Basic: two 3x3 convolutions; bottleneck: 1x1, 3x3 (the stride), 1x1 to `4 filters`."""
    if block_type == "basic":
        convs = [(filters, 3, stride), (filters, 3, 1)]
    else:
        convs = [(filters, 1, 1), (filters, 3, stride), (filters * 4, 1, 1)]
    return _chain(
        [
            layer
            for i, (width, size, step) in enumerate(convs, 1)
            for layer in _preact_layers(width, size, step, f"{name}_{i}", padding, dtype)
        ]
    )
