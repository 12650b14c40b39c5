"""Numerical schemes for `du/dt = f(u)`, written once: a residual network picks its integrator by name.

A network absorbs the step `h` into its learned residual function, so here a scheme is applied to
functions that return `h f`: forward Euler is `u + f(u)`, the ResNet block. With `z = h λ` for a
linear `f(u) = λ u`, one step multiplies `u` by the stability function `R(z)`; a scheme is stable
where `|R(z)| <= 1`.

| name | scheme | order | `f` evaluations per step | stability function `R(z)` |
|---|---|---|---|---|
| `euler` | forward Euler (the ResNet) | 1 | 1 | `1 + z` |
| `heun` | Heun (RK2, trapezoidal predictor-corrector) | 2 | 2 | `1 + z + z²/2` |
| `midpoint` | explicit midpoint (RK2) | 2 | 2 | `1 + z + z²/2` |
| `rk4` | classical Runge-Kutta | 4 | 4 | `1 + z + z²/2 + z³/6 + z⁴/24` |
| `backward_euler` | backward Euler by 2 fixed-point iterations (PolyNet) | 1 | 2 | `1 + z + z²` |
| `lm` | LM-ResNet's linear two-step scheme | 1 (2 at `k = 1`) | 1 | roots of `ζ² - (1 - k + z) ζ - k` |

The first five are explicit Runge-Kutta schemes, data in a Butcher tableau (`RungeKutta`); `lm`
(`LinearTwoStep`) carries a trainable `k` and lives in the layer `LinearMultistep` of LM-ResNet.

Who uses what: `LMResNet(scheme=...)` takes every scheme here (docs/papers.md#lm-resnet-update).
Forward Euler (`EULER`) is also the step of the other residual networks, which write it inline (one
`Add`): PreAct-ResNet-18 and WRN (`x + f(x)`), the mean-field ResNet (step `1/L`), DURR's recurrent
unit `x + g(x, x0)` and PDE-Net's `D_0 u + dt Σ c_ij D_ij u`. Macaron's `"lie_trotter"` /
`"strang"` are splittings of two operators (attention and FFN), not schemes for one `f`, and stay in
`odezoo/models/macaron/`.
"""

from dataclasses import dataclass

import keras


@keras.saving.register_keras_serializable(package="odezoo")
class LinearCombination(keras.layers.Layer):
    """`Σ_i c_i x_i` of its inputs with fixed coefficients `c_i` (no weights): a step's stage input or
    its update.

    Args:
        coefficients: one float per input.
    """

    def __init__(self, coefficients, **kwargs):
        super().__init__(**kwargs)
        self.coefficients = [float(c) for c in coefficients]

    def call(self, inputs):
        terms = [x if c == 1.0 else c * x for c, x in zip(self.coefficients, inputs, strict=True)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "coefficients": self.coefficients}


@dataclass(frozen=True)
class RungeKutta:
    """An explicit Runge-Kutta scheme by its Butcher tableau (`c_i = Σ_j a_ij`, implied):

        k_i = f_i(u + Σ_{j<i} a_ij k_j),    u⁺ = u + Σ_i b_i k_i

    The textbook scheme evaluates one `f` at every stage (`f_i = f`); a network may give each stage
    its own block. Stability function `R(z) = 1 + Σ_{j>=1} bᵀ A^{j-1} 1 z^j`, a polynomial of
    degree `evaluations`: every explicit scheme is unstable for large enough `|z|`.

    Args:
        name: the scheme's name in `SCHEMES`.
        a: rows of the strictly lower triangle: row `i` holds `a_i0 .. a_i,i-1` (the first is empty).
        b: the weights of the stages.
        order: the order of accuracy (the local error is `O(h^(order + 1))`).
        title: a short description for cards and tables.
    """

    name: str
    a: tuple
    b: tuple
    order: int
    title: str

    def __post_init__(self):
        if [len(row) for row in self.a] != list(range(len(self.b))):
            raise ValueError(
                f"An explicit tableau with {len(self.b)} stages has rows of 0, 1, ... entries. "
                f"Received: a={self.a!r}"
            )

    @property
    def evaluations(self):
        """Evaluations of `f` per step: the number of stages."""
        return len(self.b)

    def step(self, u, functions, *, name=None, dtype=None):
        """One step from `u`; `functions` holds the residual function of each stage (the same one
        `evaluations` times for the textbook scheme). Works on symbolic tensors (the layers join a
        functional model: stage inputs `name_in2 ...`, the update `name`) and on concrete ones."""
        if len(functions) != self.evaluations:
            raise ValueError(
                f"Scheme {self.name!r} has {self.evaluations} stages. Received: {len(functions)} functions"
            )
        slopes = []
        for i, (row, f) in enumerate(zip(self.a, functions)):
            x = _combine(u, row, slopes, name and f"{name}_in{i + 1}", dtype)
            slopes.append(f(x))
        return _combine(u, self.b, slopes, name, dtype)


def _combine(u, coefficients, slopes, name, dtype):
    """`u + Σ c_j k_j` over the nonzero `c_j`; `u` itself (no layer) when there is none."""
    terms = [(c, k) for c, k in zip(coefficients, slopes) if c != 0]
    if not terms:
        return u
    return LinearCombination([1.0, *(c for c, _ in terms)], name=name, dtype=dtype)(
        [u, *(k for _, k in terms)]
    )


def backward_euler_fixed_point(iterations):
    """Backward Euler `u⁺ = u + f(u⁺)` approximated by `iterations` fixed-point iterations from `u`,
    `x_0 = u`, `x_{m+1} = u + f(x_m)`, written as the tableau `a_{i,i-1} = 1`, `b = (0, ..., 0, 1)`.

    For a linear `f = F` this is the truncated Neumann series `(I + F + ... + F^iterations) u` of
    `(I - F)^{-1} u`, PolyNet's `I + F + F²` at 2 iterations. We iterate rather than sum the series:
    for a nonlinear `f` the iterates converge to the backward-Euler solution when `h Lip(f) < 1`
    (the series `u + F(u) + F(F(u))` approximates no implicit step), and both cost `iterations`
    evaluations. Order 1 (like backward Euler); `R(z) = 1 + z + ... + z^iterations`. At 2
    iterations it is stable on the imaginary axis up to `|z| = 1`, where forward Euler grows for
    every `z`, but on the real axis only for `-1 <= z <= 0` (forward Euler: `-2 <= z <= 0`): a fixed
    number of explicit evaluations gives a polynomial `R`, never the A-stability of the exact
    implicit solve `R(z) = 1 / (1 - z)`. One iteration is forward Euler.
    """
    return RungeKutta(
        name="backward_euler",
        a=tuple(tuple(1.0 if j == i - 1 else 0.0 for j in range(i)) for i in range(iterations)),
        b=tuple(1.0 if i == iterations - 1 else 0.0 for i in range(iterations)),
        order=1,
        title=f"backward Euler by {iterations} fixed-point iterations",
    )


EULER = RungeKutta(name="euler", a=((),), b=(1.0,), order=1, title="forward Euler")
"""Forward Euler `u + f(u)`, the ResNet block: order 1, 1 evaluation, `R(z) = 1 + z` (stable in the
disc `|1 + z| <= 1`)."""

HEUN = RungeKutta(name="heun", a=((), (1.0,)), b=(0.5, 0.5), order=2, title="Heun (RK2)")
"""Heun's method `u + (f(u) + f(u + f(u))) / 2`: order 2, 2 evaluations, `R(z) = 1 + z + z²/2`."""

MIDPOINT = RungeKutta(name="midpoint", a=((), (0.5,)), b=(0.0, 1.0), order=2, title="explicit midpoint (RK2)")
"""The explicit midpoint method `u + f(u + f(u)/2)`: order 2, 2 evaluations, `R(z) = 1 + z + z²/2`."""

RK4 = RungeKutta(
    name="rk4",
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    order=4,
    title="classical Runge-Kutta (RK4)",
)
"""The classical Runge-Kutta scheme: order 4, 4 evaluations, `R(z) = 1 + z + z²/2 + z³/6 + z⁴/24`."""

BACKWARD_EULER = backward_euler_fixed_point(2)
"""Backward Euler by 2 fixed-point iterations, `u + f(u + f(u))` (`backward_euler_fixed_point`):
order 1, 2 evaluations, `R(z) = 1 + z + z²`."""


@dataclass(frozen=True)
class LinearTwoStep:
    """LM-ResNet's linear two-step scheme `u_{n+1} = (1 - k) u_n + k u_{n-1} + f(u_n)`, one trainable
    `k` per step (`k = 0` is forward Euler); `LinearMultistep` (LM-ResNet's layer) applies it.

    Order 1, 1 evaluation per step. Consistent with `du/dt = g` when the branch is `f = (1 + k) h g`
    (the paper's modified equation `(1 + k) u' + ... = f / h`; a network absorbs the factor); the
    local error is `O(h²)`, and `O(h³)` at `k = 1`, the leapfrog `u_{n-1} + 2 h g(u_n)` (order 2).
    Zero-stable for `-1 < k <= 1` (the roots of `ρ(ζ) = (ζ - 1)(ζ + k)`); on `f = z u` the step is
    stable where both roots of `ζ² - (1 - k + z) ζ - k` lie in the closed unit disc.
    """

    name: str = "lm"
    order: int = 1
    evaluations: int = 1
    title: str = "linear two-step (LM-ResNet)"

    @staticmethod
    def update(current, previous, residual, k):
        """`u_{n+1}` from `u_n`, `u_{n-1}` and `f(u_n)`."""
        return (1.0 - k) * current + k * previous + residual


LINEAR_TWO_STEP = LinearTwoStep()

SCHEMES = {s.name: s for s in (LINEAR_TWO_STEP, EULER, HEUN, MIDPOINT, RK4, BACKWARD_EULER)}
"""Every scheme by name, LM-ResNet's two-step scheme first."""
