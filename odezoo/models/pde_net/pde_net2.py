"""PDE-Net 2.0 (Long, Lu, Dong, J. Comput. Phys. 2019): forward Euler for a learned polynomial PDE.

One step is `u <- u + dt * SymNet_c(features(u))` per channel `c`, where the features are the
moment-filter derivatives `d^(i+j) c' / dy^i dx^j` (i + j <= max_order) of every channel `c'`
and SymNet is a polynomial network (docs/papers.md#pde-net-2). The model is the one-step map, so it
exports like any Keras model; `rollout` iterates it and `expression` reads the PDE it learned.
"""

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from odezoo.errors import OdezooError, check_dtype, check_number, warn
from odezoo.models.pde_net.pde_net_base import PDEModelMixin, check_filters, derivative_orders, feature_name
from odezoo.models.pde_net.pde_net_layers import MomentConv2D, SymNet, filter_bank, kernel_to_moments
from odezoo.models.pde_net.pde_net_task import PDENetRollout
from odezoo.pretrained import PretrainedMixin


def _stencil_moments(order, size):
    """Moments of PDE-Net 2.0's initial kernels: one-sided `[-3, 4, -1]/2` for first and `[1, -2, 1]`
    for pure second derivatives, `e_o` otherwise."""
    kernel, c = np.zeros((size, size)), size // 2
    line = {1: ([0, 1, 2], [-1.5, 2.0, -0.5]), 2: ([-1, 0, 1], [1.0, -2.0, 1.0])}
    if order in ((0, 1), (0, 2)):
        offsets, values = line[order[1]]
        kernel[c, [c + o for o in offsets]] = values
    elif order in ((1, 0), (2, 0)):
        offsets, values = line[order[0]]
        kernel[[c + o for o in offsets], c] = values
    else:
        moments = np.zeros((size, size))
        moments[order] = 1.0
        return moments
    return kernel_to_moments(kernel)


@keras.saving.register_keras_serializable(package="odezoo")
class PolynomialPDEStep(keras.layers.Layer):
    """`u + dt * (SymNet_1(F(u)), ..., SymNet_C(F(u)))`, F the moment-filter features
    (docs/papers.md#pde-net-2).

    With `upwind`, every first-order feature is computed with its kernel `k` and with the mirror
    `-flip(k)`, and each point takes `k` where the SymNet's derivative with respect to that
    feature (evaluated on the `k` features, without gradient) is positive, else the mirror:
    for `-u u_x` that is the backward difference where `u > 0`.

    The arguments are `PDENet2`'s (`h = 2 pi / grid`), which declares their defaults.
    """

    def __init__(
        self,
        *,
        num_channels,
        h,
        dt,
        kernel_size,
        max_order,
        num_hidden,
        constraint,
        acc,
        upwind,
        seed,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_channels, self.h, self.dt = int(num_channels), float(h), float(dt)
        self.kernel_size, self.max_order, self.num_hidden = int(kernel_size), int(max_order), int(num_hidden)
        self.constraint, self.acc, self.upwind, self.seed = constraint, int(acc), bool(upwind), seed
        self.orders = derivative_orders(self.max_order)
        self.filters = [
            MomentConv2D(
                order,
                kernel_size=kernel_size,
                h=h,
                constraint=constraint,
                acc=acc,
                padding="periodic",
                name=f"fd{order[0]}{order[1]}",
                dtype=self.dtype_policy,
            )
            for order in self.orders
        ]
        self.symnets = [
            SymNet(
                num_hidden,
                seed=None if seed is None else seed + c,
                name=f"symnet_{c}",
                dtype=self.dtype_policy,
            )
            for c in range(self.num_channels)
        ]
        self.first_order = [k for k, o in enumerate(self.orders) if sum(o) == 1]

    def build(self, input_shape):
        for conv in self.filters:
            conv.build(input_shape)
            conv.moments.assign(_stencil_moments(conv.order, self.kernel_size))
        features = self.num_channels * len(self.orders)
        for net in self.symnets:
            net.build((None, features))

    def features(self, u):
        """Forward features and, for upwinding, the features with mirrored first-order kernels.

        Returns two `(..., C * len(orders))` tensors, channel-major. All kernels are applied in one
        convolution of the periodically padded channels.
        """
        kernels = [conv.kernel() for conv in self.filters]
        mirrors = [-ops.flip(ops.flip(kernels[k], 0), 1) for k in self.first_order] if self.upwind else []
        n, c = len(self.orders), self.num_channels
        batch, rows, cols = ops.shape(u)[0], u.shape[1], u.shape[2]
        out = filter_bank(u, kernels + mirrors)  # (..., C, K)
        forward = ops.reshape(out[..., :n], (batch, rows, cols, c * n))
        if not self.upwind:
            return forward, forward
        mirrored = [
            out[..., n + self.first_order.index(k) : n + self.first_order.index(k) + 1]
            if k in self.first_order
            else out[..., k : k + 1]
            for k in range(n)
        ]
        backward = ops.reshape(ops.concatenate(mirrored, axis=-1), (batch, rows, cols, c * n))
        return forward, backward

    def rhs(self, u):
        """The learned `u_t`, shape of `u`."""
        forward, backward = self.features(u)
        if not self.upwind:
            return ops.stack([net(forward) for net in self.symnets], axis=-1)
        n, total = len(self.orders), self.num_channels * len(self.orders)
        upwinded = [c * n + k for c in range(self.num_channels) for k in self.first_order]
        scatter = np.zeros((len(upwinded), total))
        scatter[np.arange(len(upwinded)), upwinded] = 1.0
        others = 1.0 - scatter.sum(0)  # features that are not upwinded always take `forward`
        outs = []
        for net in self.symnets:
            slope = net.input_gradient(ops.stop_gradient(forward), upwinded)
            slope = ops.matmul(slope, ops.cast(scatter, slope.dtype)) + ops.cast(others, slope.dtype)
            outs.append(net(ops.where(slope > 0, forward, backward)))
        return ops.stack(outs, axis=-1)

    def call(self, u):
        return u + self.dt * self.rhs(u)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_channels": self.num_channels,
            "h": self.h,
            "dt": self.dt,
            "kernel_size": self.kernel_size,
            "max_order": self.max_order,
            "num_hidden": self.num_hidden,
            "constraint": self.constraint,
            "acc": self.acc,
            "upwind": self.upwind,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class LearnedPDE:
    """The right-hand sides a PDE model learned, as sympy expressions, with the chop threshold used."""

    rhs: dict  # channel -> sympy expression
    threshold: float

    def coefficients(self):
        """`{channel: {monomial: coefficient}}`, monomials as sympy expressions."""
        return {c: dict(e.as_coefficients_dict()) for c, e in self.rhs.items()}

    def __str__(self):
        lines = [f"{c}_t = {e.evalf(6)}" for c, e in self.rhs.items()]
        return "\n".join(lines + [f"(terms with |coefficient| < {self.threshold:g} dropped)"])


@keras.saving.register_keras_serializable(package="odezoo")
class PDENet2(PDEModelMixin, PretrainedMixin, keras.Model):
    """PDE-Net 2.0: `u_{n+1} = u_n + dt * N(u_n)`, forward Euler for the PDE `u_t = N(u)` it learns.

    `N` has one SymNet per channel, applied to the moment-filter derivatives of all channels
    up to `max_order` (the filters' accuracy is `h^acc` with `constraint="moment"`). The model
    maps a field `(batch, grid, grid, channels)` to the next step; x runs along axis 1.

    Args:
        channels: names of the fields, e.g. `("u", "v")`.
        grid: points per axis of the periodic grid on [0, 2 pi)^2 (h = 2 pi / grid).
        dt: time step.
        kernel_size: 5 or 7.
        max_order: highest derivative order in the features (2).
        num_hidden: SymNet product layers (5: polynomials of degree up to 32).
        constraint: moment constraint of the filters, `"moment"` (with `acc`), `"frozen"` or `"free"`.
        acc: accuracy order kept by `"moment"` (2 in the paper).
        upwind: choose one-sided first-derivative filters by the sign of the transport velocity.
        seed: seed of the SymNets' initial weights.

    Example:
        >>> model = odezoo.load("pde_net2_burgers2d")
        >>> print(model.expression())        # u_t = 0.05 u_xx + ... - u u_x - v u_y
        >>> path = model.rollout(u0, 100)    # u0: (batch, 32, 32, 2)

    Reference: https://arxiv.org/abs/1812.04426
    """

    TASK_CLASS = PDENetRollout
    CITATION = """@article{long2019pdenet2,
  title={PDE-Net 2.0: Learning PDEs from data with a numeric-symbolic hybrid deep network},
  author={Long, Zichao and Lu, Yiping and Dong, Bin},
  journal={Journal of Computational Physics},
  volume={399},
  pages={108925},
  year={2019}
}"""

    def __init__(
        self,
        *,
        channels=("u", "v"),
        grid=32,
        dt=0.01,
        kernel_size=5,
        max_order=2,
        num_hidden=5,
        constraint="moment",
        acc=2,
        upwind=True,
        seed=0,
        dtype="float64",
        **kwargs,
    ):
        channels = tuple(channels)
        if not channels or len(set(channels)) != len(channels):
            raise OdezooError(f"`channels` must be distinct names. Received: channels={channels}")
        check_filters(kernel_size, max_order)
        check_dtype(dtype)
        if int(grid) < kernel_size:
            raise OdezooError(f"`grid` must be at least kernel_size={kernel_size}. Received: grid={grid}")
        inputs = keras.Input(
            (grid, grid, len(channels)), name="u", dtype=keras.dtype_policies.get(dtype).variable_dtype
        )
        step = PolynomialPDEStep(
            num_channels=len(channels),
            h=2 * math.pi / grid,
            dt=dt,
            kernel_size=kernel_size,
            max_order=max_order,
            num_hidden=num_hidden,
            constraint=constraint,
            acc=acc,
            upwind=upwind,
            seed=seed,
            name="step",
            dtype=dtype,
        )
        super().__init__(inputs=inputs, outputs=step(inputs), dtype=dtype, **kwargs)
        self.step = step

        # === Config ===
        self.set_config(
            dtype=dtype,  # the layers' policy: a functional model keeps float32 as its own
            channels=list(channels),
            grid=int(grid),
            dt=float(dt),
            kernel_size=int(kernel_size),
            max_order=int(max_order),
            num_hidden=int(num_hidden),
            constraint=constraint,
            acc=int(acc),
            upwind=bool(upwind),
            seed=seed,
        )

    @property
    def feature_names(self):
        return [feature_name(c, o) for c in self.channels for o in self.step.orders]

    def expression(self, threshold=1e-2):
        """The learned right-hand sides as sympy expressions, terms with |coefficient| < threshold dropped.

        The SymNet is expanded layer by layer; intermediate products below `threshold / 1000` are
        dropped on the way, which keeps the expansion of degree-32 products tractable.
        """
        import sympy

        threshold = check_number("threshold", threshold, minimum=0)
        symbols = sympy.symbols(self.feature_names)
        rhs = {}
        for channel, net in zip(self.channels, self.step.symnets):
            terms = [
                sympy.Float(c) * sympy.Mul(*(s**e for s, e in zip(symbols, mono) if e))
                for mono, c in net.polynomial(prune=max(threshold * 1e-3, 1e-12)).items()
                if abs(c) >= threshold
            ]
            rhs[channel] = sympy.Add(*terms)
        if all(expr == 0 for expr in rhs.values()):
            warn(f"Every term is below threshold={threshold:g}: all right-hand sides are 0; try 0.01.")
        return LearnedPDE(rhs, threshold)
