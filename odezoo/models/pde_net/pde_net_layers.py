"""PDE-Net's moment-constrained convolution (Long, Lu, Ma, Dong, ICML 2018; docs/papers.md#pde-net-moments).

An N x N filter `q` is described by its moment matrix `m = M q M^T`, where
`M[i, c] = (c - (N - 1) / 2)^i / i!`; then `(q * u)(x) = sum_ij m_ij h^(i+j) d^(i+j)u / dx0^i dx1^j + ...`
(`*` is cross-correlation, index i along tensor axis 0, j along axis 1). Fixing the low
moments to those of the unit vector `e_o` makes `q / h^|o|` approximate the derivative of
order `o = (a, b)`: with every moment `i + j < |o| + acc` fixed, to order `h^acc`.
"""

import math

import keras
import numpy as np
from keras import ops

from odezoo.errors import OdezooError

CONSTRAINTS = ("frozen", "moment", "free")
PADDINGS = ("periodic", "zero")


def moment_matrix(size):
    """`M[i, c] = (c - (size - 1) / 2)^i / i!`, float64."""
    offsets = np.arange(size) - (size - 1) / 2
    return np.stack([offsets**i / math.factorial(i) for i in range(size)])


def kernel_to_moments(kernel):
    """`m = M q M^T` for a square kernel `q` (NumPy, float64)."""
    matrix = moment_matrix(kernel.shape[0])
    return matrix @ kernel @ matrix.T


def moments_to_kernel(moments):
    """`q = M^-1 m M^-T`, the inverse of `kernel_to_moments`."""
    inverse = np.linalg.inv(moment_matrix(moments.shape[0]))
    return inverse @ moments @ inverse.T


def filter_bank(inputs, kernels, padding="periodic"):
    """Correlates every channel of `inputs` (batch, rows, cols, C) with each N x N kernel, in one
    convolution; returns `(batch, rows, cols, C, len(kernels))`."""
    r = kernels[0].shape[0] // 2
    if padding == "periodic":
        x = ops.concatenate([inputs[:, -r:], inputs, inputs[:, :r]], axis=1)
        x = ops.concatenate([x[:, :, -r:], x, x[:, :, :r]], axis=2)
    else:
        x = ops.pad(inputs, [(0, 0), (r, r), (r, r), (0, 0)])
    batch, rows, cols, channels = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2], inputs.shape[3]
    x = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (-1, rows + 2 * r, cols + 2 * r, 1))
    out = ops.conv(x, ops.stack(kernels, axis=-1)[:, :, None, :], padding="valid")
    return ops.transpose(ops.reshape(out, (batch, channels, rows, cols, len(kernels))), (0, 2, 3, 1, 4))


@keras.saving.register_keras_serializable(package="odezoo")
class MomentConv2D(keras.layers.Layer):
    """Approximates `d^(a+b) u / dx0^a dx1^b` on a uniform grid of spacing `h`, per channel.

    The trainable variable is the moment matrix; the filter is `M^-1 m M^-T / h^(a+b)`.
    The constrained moments are not trained at all (a mask splits `m` into a fixed part,
    those of `e_o`, and a free part), so they stay exact after every optimizer step.

    Args:
        order: `(a, b)`, the derivative along axes 0 and 1 (tensor axes 1 and 2 of a batch).
        kernel_size: N, odd (5 or 7 in the papers).
        h: grid spacing.
        constraint: `"frozen"` (m = e_o, not trained: the most accurate N x N stencil),
            `"moment"` (moments with `i + j < a + b + acc` fixed: order `h^acc`) or
            `"free"` (every moment trained).
        acc: accuracy order kept by `"moment"`.
        padding: `"periodic"` or `"zero"` (Dirichlet).
        moments_initializer: initial value of the free moments (added to `e_o`).
    """

    def __init__(
        self,
        order,
        *,
        kernel_size=5,
        h=1.0,
        constraint="frozen",
        acc=1,
        padding="periodic",
        moments_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        order = tuple(int(o) for o in order)
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise OdezooError(f"`kernel_size` must be odd. Received: kernel_size={kernel_size}")
        if len(order) != 2 or min(order) < 0 or sum(order) >= kernel_size:
            raise OdezooError(
                f"`order` must be (a, b) with a, b >= 0 and a + b < kernel_size={kernel_size}. "
                f"Received: order={order}"
            )
        if constraint not in CONSTRAINTS:
            raise OdezooError(
                f"`constraint` must be one of {CONSTRAINTS}. Received: constraint={constraint!r}"
            )
        if padding not in PADDINGS:
            raise OdezooError(f"`padding` must be one of {PADDINGS}. Received: padding={padding!r}")
        if constraint == "moment" and acc < 1:
            raise OdezooError(f"`acc` must be >= 1. Received: acc={acc}")
        self.order = order
        self.kernel_size = kernel_size
        self.h = float(h)
        self.constraint = constraint
        self.acc = int(acc)
        self.padding = padding
        self.moments_initializer = keras.initializers.get(moments_initializer)
        target = np.zeros((kernel_size, kernel_size))
        target[order] = 1.0
        i, j = np.indices((kernel_size, kernel_size))
        if constraint == "frozen":
            fixed = np.ones_like(target)
        elif constraint == "moment":
            fixed = (i + j < sum(order) + acc).astype("float64")
        else:
            fixed = np.zeros_like(target)
        self._target = target
        self._fixed = fixed
        self._inverse = np.linalg.inv(moment_matrix(kernel_size))

    def build(self, input_shape):
        self.moments = self.add_weight(
            name="moments",
            shape=(self.kernel_size, self.kernel_size),
            initializer=self.moments_initializer,
            trainable=self.constraint != "frozen",
        )

    def moment_values(self):
        """The moment matrix in use: `e_o` on the fixed entries, the variable elsewhere."""
        free = ops.cast(self.moments, self.compute_dtype) * (1.0 - self._fixed)
        return ops.cast(self._target * self._fixed, self.compute_dtype) + free

    def kernel(self):
        """The N x N correlation filter, scaled by `1 / h^(a+b)`."""
        inverse = ops.cast(self._inverse, self.compute_dtype)
        q = ops.matmul(ops.matmul(inverse, self.moment_values()), ops.transpose(inverse))
        return q / self.h ** sum(self.order)

    def call(self, inputs):
        return self.correlate(inputs, self.kernel())

    def correlate(self, inputs, kernel):
        """Correlates every channel of `inputs` with the N x N `kernel`, with this layer's padding."""
        return filter_bank(inputs, [kernel], self.padding)[..., 0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "order": list(self.order),
            "kernel_size": self.kernel_size,
            "h": self.h,
            "constraint": self.constraint,
            "acc": self.acc,
            "padding": self.padding,
            "moments_initializer": keras.initializers.serialize(self.moments_initializer),
        }


@keras.saving.register_keras_serializable(package="odezoo")
class SymNet(keras.layers.Layer):
    """PDE-Net 2.0's symbolic network: a polynomial of its input features (docs/papers.md#pde-net-2).

    Hidden layer `k = 0 .. H-1` maps the `F + k` features so far to two values and appends
    their product as a new feature; the output is an affine map of all `F + H` features.
    So the output is a polynomial of degree at most `2^H` in the inputs, without listing
    monomials. Weights and biases start from `0.1 N(0, 1)`, as in the official code.

    Args:
        num_hidden: H, the number of product layers (5 in every official configuration).
        seed: seed of the initial weights.
    """

    def __init__(self, num_hidden=5, *, seed=None, **kwargs):
        super().__init__(**kwargs)
        if num_hidden < 0:
            raise OdezooError(f"`num_hidden` must be >= 0. Received: num_hidden={num_hidden}")
        self.num_hidden = int(num_hidden)
        self.seed = seed
        init = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
        self.hidden = [
            keras.layers.Dense(
                2,
                kernel_initializer=init,
                bias_initializer=init,
                name=f"product_{k}",
                dtype=self.dtype_policy,
            )
            for k in range(self.num_hidden)
        ]
        self.out = keras.layers.Dense(
            1, kernel_initializer=init, bias_initializer=init, name="output", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        features = input_shape[-1]
        for k, layer in enumerate(self.hidden):
            layer.build((None, features + k))
        self.out.build((None, features + self.num_hidden))

    def call(self, features):
        x = features
        for layer in self.hidden:
            pair = layer(x)
            x = ops.concatenate([x, pair[..., :1] * pair[..., 1:]], axis=-1)
        return self.out(x)[..., 0]

    def input_gradient(self, features, indices):
        """`d SymNet / d features[..., i]` for `i` in `indices`, by forward-mode differentiation.

        The tangent of product feature `p_k = a_k b_k` is `a_k db_k + b_k da_k`; the inputs'
        tangents are constant unit vectors, so only the product features carry per-point tangents.
        """
        num_inputs = features.shape[-1]
        x, tangents = features, []

        def tangent_of(weights):  # d(x @ weights) for x's current features, shape (..., len(indices), units)
            total = ops.cast(ops.take(weights, indices, axis=0), x.dtype)
            for j, t in enumerate(tangents):
                total = total + t[..., None] * ops.cast(weights[num_inputs + j], x.dtype)
            return total

        for layer in self.hidden:
            pair = layer(x)
            d = tangent_of(layer.kernel)
            tangents.append(pair[..., None, 0] * d[..., 1] + pair[..., None, 1] * d[..., 0])
            x = ops.concatenate([x, pair[..., :1] * pair[..., 1:]], axis=-1)
        return tangent_of(self.out.kernel)[..., 0]

    def polynomial(self, prune=1e-12):
        """The network as a polynomial `{exponents: coefficient}` in its inputs (float64 NumPy).

        Exponent tuples have one entry per input feature. Intermediate terms with
        `|coefficient| < prune` are dropped, which keeps the expansion of `2^H`-degree
        products small.
        """
        num_inputs = self.hidden[0].kernel.shape[0] if self.hidden else self.out.kernel.shape[0]
        zero = (0,) * num_inputs
        features = [{tuple(int(i == k) for i in range(num_inputs)): 1.0} for k in range(num_inputs)]

        def affine(layer):
            kernel, bias = (np.asarray(w, "float64") for w in layer.get_weights())
            outputs = []
            for unit in range(kernel.shape[1]):
                poly = {zero: bias[unit]}
                for f, p in enumerate(features):
                    for mono, c in p.items():
                        poly[mono] = poly.get(mono, 0.0) + kernel[f, unit] * c
                outputs.append(poly)
            return outputs

        for layer in self.hidden:
            a, b = affine(layer)
            product = {}
            for ma, ca in a.items():
                for mb, cb in b.items():
                    c = ca * cb
                    if abs(c) >= prune:
                        mono = tuple(i + j for i, j in zip(ma, mb))
                        product[mono] = product.get(mono, 0.0) + c
            features.append(product)
        return {mono: c for mono, c in affine(self.out)[0].items() if c != 0.0}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "num_hidden": self.num_hidden, "seed": self.seed}
