"""PDE-Net (Long, Lu, Ma, Dong, ICML 2018): delta-t blocks for a linear PDE with variable coefficients.

One block is `u <- D_0 u + dt * (sum_{i+j<=max_order} c_ij(y, x) D_ij u + f(D_00 u))`: `D_ij` are
moment-constrained filters approximating `d^(i+j) / dy^i dx^j`, `D_0` a learnable order-0 filter,
each `c_ij` a periodic piecewise-quadratic Lagrange interpolant of trainable nodal values on a
coarse mesh, and `f` an optional 1-D piecewise-quartic interpolant (the learned source term of
the nonlinear diffusion experiment). All blocks share weights (docs/papers.md#pde-net-v1).
"""

import math

import keras
import numpy as np
from keras import ops

from odezoo.errors import OdezooError, check_dtype
from odezoo.models.pde_net.pde_net_base import PDEModelMixin, check_filters, derivative_orders, feature_name
from odezoo.models.pde_net.pde_net_layers import MomentConv2D, filter_bank
from odezoo.models.pde_net.pde_net_task import PDENetRollout
from odezoo.pretrained import PretrainedMixin


def lagrange_weights(s, degree):
    """Lagrange basis on `degree + 1` equispaced nodes of [0, 1] at the points `s`"""
    nodes = np.linspace(0, 1, degree + 1)
    s = np.asarray(s, "float64")[..., None]
    weights = np.ones(s.shape[:-1] + (degree + 1,))
    for a in range(degree + 1):
        for b in range(degree + 1):
            if a != b:
                weights[..., a] *= (s[..., 0] - nodes[b]) / (nodes[a] - nodes[b])
    return weights


def periodic_interpolation_matrix(points, cells, degree=2):
    """`(points, cells * degree)` matrix evaluating a periodic piecewise-polynomial Lagrange interpolant
    with nodes `k / (cells * degree)` of [0, 1) at the points `j / points`."""
    x = np.arange(points) / points * cells
    cell = np.floor(x).astype(int)
    weights = lagrange_weights(x - cell, degree)
    matrix = np.zeros((points, cells * degree))
    for a in range(degree + 1):
        np.add.at(matrix, (np.arange(points), (cell * degree + a) % (cells * degree)), weights[:, a])
    return matrix


@keras.saving.register_keras_serializable(package="odezoo")
class VariableCoefficientStep(keras.layers.Layer):
    """One delta-t block of PDE-Net (see the module docstring); input and output `(batch, rows, cols, 1)`.

    The arguments are `PDENet`'s, which declares their defaults, and the range and cells of the source.
    """

    def __init__(
        self,
        *,
        grid,
        dt,
        kernel_size,
        max_order,
        constraint,
        acc,
        padding,
        mesh,
        source,
        source_range=15.0,
        source_cells=20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid, self.dt, self.kernel_size, self.max_order = (
            int(grid),
            float(dt),
            int(kernel_size),
            int(max_order),
        )
        self.constraint, self.acc, self.padding = constraint, int(acc), padding
        self.mesh, self.source = int(mesh), bool(source)
        self.source_range, self.source_cells = float(source_range), int(source_cells)
        h = 2 * math.pi / (grid + (1 if padding == "zero" else 0))
        self.orders = derivative_orders(self.max_order)
        if source:  # the nonlinear model: no (0, 0) coefficient term, orders up to 2
            self.orders = tuple(o for o in self.orders if o != (0, 0))
        common = dict(
            kernel_size=kernel_size,
            h=h,
            constraint=constraint,
            acc=acc,
            padding=padding,
            dtype=self.dtype_policy,
        )
        self.identity = MomentConv2D((0, 0), name="id", **common)
        self.filters = [MomentConv2D(o, name=f"fd{o[0]}{o[1]}", **common) for o in self.orders]
        self.value = MomentConv2D((0, 0), name="fd00", **common) if source else None
        self._interp = periodic_interpolation_matrix(self.grid, self.mesh)

    def build(self, input_shape):
        for conv in [self.identity, *self.filters] + ([self.value] if self.source else []):
            conv.build(input_shape)
        nodes = 2 * self.mesh
        self.coefficients = self.add_weight(
            name="coefficients", shape=(len(self.orders), nodes, nodes), initializer="zeros"
        )
        if self.source:
            self.source_values = self.add_weight(
                name="source_values", shape=(4 * self.source_cells + 1,), initializer="zeros"
            )

    def coefficient_fields(self):
        """`(len(orders), grid, grid)`: every `c_ij` at the grid points."""
        p = ops.cast(self._interp, self.compute_dtype)
        return ops.einsum("yn,knm,xm->kyx", p, self.coefficients, p)

    def source_term(self, v):
        """`f(v)`: piecewise quartic on `source_cells` cells of [-source_range, source_range] (clamped)."""
        width = 2 * self.source_range / self.source_cells
        x = ops.clip((v + self.source_range) / width, 0.0, self.source_cells - 1e-9)
        cell = ops.floor(x)
        s = x - cell
        index = ops.cast(cell, "int32") * 4
        nodes = np.linspace(0, 1, 5)
        total = 0.0
        for a in range(5):
            basis = 1.0
            for b in range(5):
                if a != b:
                    basis = basis * (s - nodes[b]) / (nodes[a] - nodes[b])
            total = total + basis * ops.take(self.source_values, index + a)
        return total

    def call(self, u):
        convs = [self.identity, *self.filters] + ([self.value] if self.source else [])
        out = filter_bank(u, [conv.kernel() for conv in convs], self.padding)[..., 0, :]  # (..., K)
        terms = out[..., 1 : 1 + len(self.orders)]
        rhs = ops.einsum("byxk,kyx->byx", terms, self.coefficient_fields())[..., None]
        if self.source:
            rhs = rhs + self.source_term(out[..., -1:])
        return out[..., :1] + self.dt * rhs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "grid": self.grid,
            "dt": self.dt,
            "kernel_size": self.kernel_size,
            "max_order": self.max_order,
            "constraint": self.constraint,
            "acc": self.acc,
            "padding": self.padding,
            "mesh": self.mesh,
            "source": self.source,
            "source_range": self.source_range,
            "source_cells": self.source_cells,
        }


@keras.saving.register_keras_serializable(package="odezoo")
class PDENet(PDEModelMixin, PretrainedMixin, keras.Model):
    """PDE-Net v1: `u_{n+1} = D_0 u_n + dt * sum_ij c_ij(y, x) D_ij u_n [+ dt f(D_00 u_n)]`.

    Forward Euler for `u_t = sum_ij c_ij(y, x) d^(i+j)u / dy^i dx^j [+ f(u)]` with learned
    variable coefficients; the model maps `(batch, grid, grid, 1)` to the next delta-t block.

    Args:
        grid: points per axis (periodic on [0, 2 pi)^2; with `padding="zero"` the interior points
            of a Dirichlet problem, h = 2 pi / (grid + 1)).
        dt: delta t of a block.
        kernel_size: 5 or 7.
        max_order: highest derivative order (4 in the linear experiments: 15 terms).
        constraint: `"moment"` (with `acc`, the paper's), `"frozen"` or `"free"`.
        acc: accuracy order kept by `"moment"` (1 in the paper).
        padding: `"periodic"` or `"zero"`.
        mesh: cells per axis of the coefficient interpolants (degree 2, so 2 * mesh nodes per axis).
        source: add the learned 1-D source `f(u)` (the nonlinear experiment; then orders 1..max_order).

    Reference: https://arxiv.org/abs/1710.09668
    """

    TASK_CLASS = PDENetRollout
    CITATION = """@inproceedings{long2018pdenet,
  title={PDE-Net: Learning PDEs from Data},
  author={Long, Zichao and Lu, Yiping and Ma, Xianzhong and Dong, Bin},
  booktitle={International Conference on Machine Learning (ICML)},
  year={2018}
}"""

    def __init__(
        self,
        *,
        grid=50,
        dt=0.015,
        kernel_size=5,
        max_order=4,
        constraint="moment",
        acc=1,
        padding="periodic",
        mesh=20,
        source=False,
        dtype="float64",
        **kwargs,
    ):
        check_filters(kernel_size, max_order)
        check_dtype(dtype)
        if padding not in ("periodic", "zero"):
            raise OdezooError(f"`padding` must be 'periodic' or 'zero'. Received: padding={padding!r}")
        inputs = keras.Input((grid, grid, 1), name="u", dtype=keras.dtype_policies.get(dtype).variable_dtype)
        step = VariableCoefficientStep(
            grid=grid,
            dt=dt,
            kernel_size=kernel_size,
            max_order=max_order,
            constraint=constraint,
            acc=acc,
            padding=padding,
            mesh=mesh,
            source=source,
            name="step",
            dtype=dtype,
        )
        super().__init__(inputs=inputs, outputs=step(inputs), dtype=dtype, **kwargs)
        self.channels, self.periodic, self.step = ("u",), padding == "periodic", step

        # === Config ===
        self.set_config(
            dtype=dtype,  # the layers' policy: a functional model keeps float32 as its own
            grid=int(grid),
            dt=float(dt),
            kernel_size=int(kernel_size),
            max_order=int(max_order),
            constraint=constraint,
            acc=int(acc),
            padding=padding,
            mesh=int(mesh),
            source=bool(source),
        )

    @property
    def feature_names(self):
        return [feature_name("u", o) for o in self.step.orders]

    def coefficients(self):
        """`{term name: (grid, grid) array}`: the learned coefficient field of each derivative."""
        fields = ops.convert_to_numpy(self.step.coefficient_fields())
        return dict(zip(self.feature_names, fields))

    def effective_coefficients(self):
        """`{term: (grid, grid) array}`: the coefficient of every derivative in the PDE the block implements.

        A filter with moments `m` computes `sum_ab m_ab h^(a+b) d^(a+b)u / dy^a dx^b` (to order N - 1), so
        the block's right-hand side `(D_0 u - u) / dt + sum_f c_f D_f u` has coefficient
        `(m^0_ab h^(a+b) - [ab = 00]) / dt + sum_f c_f m^f_ab h^(a+b-|f|)` on term `ab`. The learnable
        `D_0` and the free higher moments of every `D_f` take part, so this, not `coefficients()`
        alone, is the PDE the model learned.
        """
        step, n = self.step, self.step.kernel_size
        h = step.identity.h
        fields = ops.convert_to_numpy(step.coefficient_fields())
        identity = ops.convert_to_numpy(step.identity.moment_values())
        moments = [ops.convert_to_numpy(conv.moment_values()) for conv in step.filters]
        total = {}
        for order in derivative_orders(n - 1):
            a, b = order
            value = (
                (identity[order] * h ** (a + b) - (a + b == 0)) / self.dt * np.ones((self.grid, self.grid))
            )
            for conv, m, field in zip(step.filters, moments, fields):
                value = value + field * m[order] * h ** (a + b - sum(conv.order))
            total[feature_name("u", order)] = value
        return total
