"""The residual stack of the mean-field ResNet: L blocks of M two-layer "particles" each."""

import math

import keras
from keras import ops

SCALINGS = ("mean_field", "standard")


@keras.saving.register_keras_serializable(package="odezoo")
class MeanFieldBlocks(keras.layers.Layer):
    """`L` residual blocks, each the average of `M` two-layer units (particles):

        X_{l+1} = X_l + s · Σ_{m=1}^{M} a_{l,m} · act(w_{l,m} * X_l + b_{l,m}),   l = 0, …, L-1,

    with `s = 1/(L·M)` (`scaling="mean_field"`: forward Euler with step 1/L on
    `dX/dt = E_θ[f(X; θ)]`, the expectation over the M particles of each block) or `s = 1`
    (`scaling="standard"`: the usual ResNet). `w * X` is a dense map of the last axis
    (`kernel_size=None`) or a `k x k` "same" convolution of feature maps; `a_{l,m}` maps the
    hidden unit back to the features (a dense map / 1x1 convolution). Blocks have no biases
    on their outputs and no normalisation, so a block is exactly the sum of its particles.

    The L blocks' weights are stacked along a leading axis (`hidden_kernel[l]` is block l),
    so reordering, growing and widening are array operations. With `shuffle=True` the
    blocks run in a fresh random order at every training call (block-reordering training,
    like dropout a training-time perturbation); inference always runs them in order.

    Initialisation: mean-field particles are i.i.d. and independent of L and M,
    `w ~ N(0, 1/fan_in)`, `a ~ N(0, 1)`, `b = 0`; standard blocks use Glorot-uniform
    (Keras' default) per block.

    Args:
        num_blocks: L.
        width: M, the hidden units (channels) of each block.
        kernel_size: `None` for vectors, else the odd size of the square convolution.
        scaling: `"mean_field"` (1/(L·M)) or `"standard"` (1).
        activation: the unit's nonlinearity (a Keras activation name).
        shuffle: random block order at every training call.
        seed: seed of the shuffling.
    """

    def __init__(
        self,
        num_blocks,
        width,
        *,
        kernel_size=None,
        scaling="mean_field",
        activation="relu",
        shuffle=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive_int("num_blocks", num_blocks)
        _check_positive_int("width", width)
        if kernel_size is not None and (
            not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0
        ):
            raise ValueError(
                "`kernel_size` must be None or an odd positive integer. "
                f"Received: kernel_size={kernel_size!r}"
            )
        if scaling not in SCALINGS:
            raise ValueError(f"`scaling` must be one of {SCALINGS}. Received: scaling={scaling!r}")
        self.num_blocks = num_blocks
        self.width = width
        self.kernel_size = kernel_size
        self.scaling = scaling
        self.activation = keras.activations.get(activation)
        self.activation_name = activation
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def step(self):
        """The factor `s` in front of each block's sum of particles."""
        return 1.0 / (self.num_blocks * self.width) if self.scaling == "mean_field" else 1.0

    def build(self, input_shape):
        features = input_shape[-1]
        window = () if self.kernel_size is None else (self.kernel_size, self.kernel_size)
        fan_in = features * math.prod(window)
        if self.scaling == "mean_field":
            hidden_init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(fan_in))
            output_init = keras.initializers.RandomNormal(stddev=1.0)
        else:
            limit = math.sqrt(6.0 / (fan_in + self.width * math.prod(window)))
            hidden_init = keras.initializers.RandomUniform(-limit, limit)
            limit = math.sqrt(6.0 / (self.width + features))
            output_init = keras.initializers.RandomUniform(-limit, limit)
        L, M = self.num_blocks, self.width
        self.hidden_kernel = self.add_weight(
            name="hidden_kernel", shape=(L, *window, features, M), initializer=hidden_init
        )
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=(L, M), initializer="zeros")
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(L, M, features), initializer=output_init
        )

    def call(self, x, training=None):
        if training and self.shuffle:
            order = keras.random.shuffle(ops.arange(self.num_blocks, dtype="int32"), seed=self.seed_generator)
            blocks = [ops.take(order, position) for position in range(self.num_blocks)]
        else:
            blocks = range(self.num_blocks)
        for block in blocks:
            x = x + self.step * self.block(x, block)
        return x

    def block(self, x, index):
        """`Σ_m a_m act(w_m * x + b_m)` of block `index` (an int or a scalar tensor)."""
        kernel, bias, output = (
            w[index] if isinstance(index, int) else ops.take(w, index, axis=0)
            for w in (self.hidden_kernel, self.hidden_bias, self.output_kernel)
        )
        kernel, bias, output = (ops.cast(w, x.dtype) for w in (kernel, bias, output))
        if self.kernel_size is None:
            hidden = ops.matmul(x, kernel)
        else:
            hidden = ops.conv(x, kernel, strides=1, padding="same")
        return ops.matmul(self.activation(hidden + bias), output)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "width": self.width,
            "kernel_size": self.kernel_size,
            "scaling": self.scaling,
            "activation": self.activation_name,
            "shuffle": self.shuffle,
            "seed": self.seed,
        }


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
