"""Layers used only by LM-ResNet: the two-step update and per-batch stochastic depth."""

import keras
from keras import ops

from odezoo.models._schemes import LINEAR_TWO_STEP

SCHEMES = ("lm", "euler")  # the schemes of `LinearMultistep`; the network takes every `_schemes.SCHEMES`


@keras.saving.register_keras_serializable(package="odezoo")
class LinearMultistep(keras.layers.Layer):
    """One linear two-step update `u_{n+1} = (1 - k) u_n + k u_{n-1} + f(u_n)` (`_schemes.LinearTwoStep`).

    Called on `[u_n, u_{n-1}, f(u_n)]`. `k` is one trainable scalar initialised from
    U(-0.1, 0), as in the official code (there `s = 1 - k` starts in U(1.0, 1.1)).
    With `scheme="euler"` the same scalar exists but is frozen at 0 and the update is
    the forward-Euler (plain ResNet) step `u_{n+1} = u_n + f(u_n)`, so both schemes
    share one weight layout and an Euler checkpoint can warm-start an LM model.

    Args:
        scheme: `"lm"` (linear multi-step) or `"euler"`.
    """

    def __init__(self, scheme="lm", **kwargs):
        super().__init__(**kwargs)
        if scheme not in SCHEMES:
            raise ValueError(f"`scheme` must be one of {SCHEMES}. Received: scheme={scheme!r}")
        self.scheme = scheme

    def build(self, input_shape):
        lm = self.scheme == "lm"
        self.k = self.add_weight(
            name="k",
            shape=(),
            initializer=keras.initializers.RandomUniform(-0.1, 0.0) if lm else "zeros",
            trainable=lm,
        )

    def call(self, inputs):
        current, previous, residual = inputs
        if self.scheme == "euler":
            return current + residual
        k = ops.cast(self.k, current.dtype)
        return LINEAR_TWO_STEP.update(current, previous, residual, k)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scheme": self.scheme}


@keras.saving.register_keras_serializable(package="odezoo")
class StochasticDepth(keras.layers.Layer):
    """Drops a whole residual branch with probability `rate`, once per mini-batch.

    Training: `f(x) / (1 - rate)` with probability `1 - rate`, else `0` (inverted scaling,
    so the expectation is `f(x)`). Inference: `f(x)`.

    Args:
        rate: the death rate, in [0, 1).
        seed: optional seed of the draw.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        draw = keras.random.uniform((), seed=self.seed_generator)
        keep = ops.cast(draw >= self.rate, inputs.dtype)
        return inputs * (keep / (1.0 - self.rate))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
