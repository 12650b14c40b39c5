"""The layers of DURR: the restoration unit, the stopping policy, and the unfolding that owns both."""

import keras
from keras import layers, ops


class _ConvStackOnPair(layers.Layer):
    """What the unit and the policy share: `depth` convolutions (`self.convs`, made by the subclass) on
    the current estimate `x` and the degraded image `x0` concatenated, and the config."""

    def __init__(self, *, channels, features, depth, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.features, self.depth = int(channels), int(features), int(depth)

    def build(self, input_shape):
        shape = (*input_shape[:-1], 2 * self.channels)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        return shape

    def stack(self, x, x0):
        h = ops.concatenate([x, x0], axis=-1)
        for conv in self.convs:
            h = conv(h)
        return h

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "features": self.features,
            "depth": self.depth,
        }


@keras.saving.register_keras_serializable(package="odezoo")
class RestorationUnit(_ConvStackOnPair):
    """One forward-Euler step `x + g(x, x0)` (`odezoo.models._schemes.EULER`): `g` is a stack of `depth`
    3x3 convolutions (ReLU between them, `features` channels) on the current estimate `x` and the
    degraded image `x0`, concatenated.

    The last convolution starts at zero, so an untrained unit is the identity map.
    """

    def __init__(self, *, channels, features=64, depth=7, **kwargs):
        super().__init__(channels=channels, features=features, depth=depth, **kwargs)
        self.convs = [
            layers.Conv2D(
                self.channels if last else self.features,
                3,
                padding="same",
                activation=None if last else "relu",
                kernel_initializer="zeros" if last else "glorot_uniform",
                name=f"conv{i + 1}",
                dtype=self.dtype_policy,
            )
            for i, last in ((i, i == self.depth - 1) for i in range(self.depth))
        ]

    def increment(self, x, x0):
        """`g(x, x0)`, the right-hand side of the ODE."""
        return self.stack(x, x0)

    def call(self, x, x0):
        return x + self.increment(x, x0)

    def compute_output_shape(self, x_shape, x0_shape=None):
        return x_shape


@keras.saving.register_keras_serializable(package="odezoo")
class StoppingPolicy(_ConvStackOnPair):
    """`Q(x, x0) -> (q_stop, q_continue)`: `depth` 3x3 convolutions of stride 2 (ReLU; `features`
    channels, doubling at each) on `x` and `x0` concatenated, global average pooling, a dense layer."""

    def __init__(self, *, channels, features=16, depth=4, **kwargs):
        super().__init__(channels=channels, features=features, depth=depth, **kwargs)
        self.convs = [
            layers.Conv2D(
                self.features * 2**i, 3, strides=2, padding="same", activation="relu", name=f"conv{i + 1}",
                dtype=self.dtype_policy,
            )
            for i in range(self.depth)
        ]  # fmt: skip
        self.pool = layers.GlobalAveragePooling2D(name="pool", dtype=self.dtype_policy)
        self.head = layers.Dense(2, name="q", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.head.build((None, super().build(input_shape)[-1]))

    def call(self, x, x0):
        return self.head(self.pool(self.stack(x, x0)))

    def compute_output_shape(self, x_shape, x0_shape=None):
        return (x_shape[0], 2)


@keras.saving.register_keras_serializable(package="odezoo")
class Unfolding(layers.Layer):
    """`num_steps` applications of one `RestorationUnit` to the degraded image `x0`:
    `x_0 = x0, x_{t+1} = x_t + g(x_t, x0)`. Also holds the `StoppingPolicy` that chooses the number
    of steps at test time (`DURR.restore`), so the model's weights are one tree whatever `num_steps`."""

    def __init__(
        self, *, channels, num_steps, features=64, depth=7, policy_features=16, policy_depth=4, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_steps = int(num_steps)
        self.unit = RestorationUnit(
            channels=channels, features=features, depth=depth, name="unit", dtype=self.dtype_policy
        )
        self.policy = StoppingPolicy(
            channels=channels,
            features=policy_features,
            depth=policy_depth,
            name="policy",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.unit.build(input_shape)
        self.policy.build(input_shape)

    def call(self, x0):
        x = x0
        for _ in range(self.num_steps):
            x = self.unit(x, x0)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        unit, policy = self.unit, self.policy
        return {
            **super().get_config(),
            "channels": unit.channels,
            "num_steps": self.num_steps,
            "features": unit.features,
            "depth": unit.depth,
            "policy_features": policy.features,
            "policy_depth": policy.depth,
        }


def policy_values(policy, x, x0, tile=0):
    """The policy's `(q_stop, q_continue)` per image: of the whole image (`tile=0`), else the mean over
    its `tile` x `tile` tiles (the image cut to whole tiles from its top-left corner; a side shorter than
    `tile` makes one tile), the patches the policy learned on."""
    if not tile:
        return policy(x, x0)
    shape = ops.shape(x)
    high, wide = ops.minimum(tile, shape[1]), ops.minimum(tile, shape[2])
    rows, cols = shape[1] // high, shape[2] // wide

    def tiles(u):
        u = ops.reshape(u[:, : rows * high, : cols * wide], (-1, rows, high, cols, wide, shape[3]))
        return ops.reshape(ops.transpose(u, (0, 1, 3, 2, 4, 5)), (-1, high, wide, shape[3]))

    return ops.mean(ops.reshape(policy(tiles(x), tiles(x0)), (-1, rows * cols, 2)), axis=1)


class GreedyStopping(layers.Layer):
    """`DURR.restore` as one graph (for export): from `x = x0`, while some image is active and fewer
    than `max_steps` steps are taken, an image whose policy says `q_stop >= q_continue` (`policy_values`
    over tiles of `tile` pixels) becomes inactive for good, and every active image takes a step
    `x <- unit(x, x0)`. Returns the restored images and the steps each took. Holds the model's own unit
    and policy (shared weights)."""

    def __init__(self, unit, policy, max_steps, tile=0, **kwargs):
        super().__init__(**kwargs)
        self.unit, self.policy, self.max_steps, self.tile = unit, policy, int(max_steps), int(tile)

    def call(self, x0):
        def cond(t, x, steps, active):
            return ops.logical_and(t < self.max_steps, ops.any(active))

        def body(t, x, steps, active):
            q = policy_values(self.policy, x, x0, self.tile)
            active = ops.logical_and(active, q[:, 0] < q[:, 1])
            x = ops.where(ops.reshape(active, (-1, 1, 1, 1)), self.unit(x, x0), x)
            return t + 1, x, steps + ops.cast(active, "int32"), active

        batch = ops.shape(x0)[0]
        start = (
            ops.convert_to_tensor(0, "int32"),
            x0,
            ops.zeros((batch,), "int32"),
            ops.ones((batch,), "bool"),
        )
        _, x, steps, _ = ops.while_loop(cond, body, start)
        return x, steps
