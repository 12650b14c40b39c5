"""The schemes of `odezoo.models._schemes`, measured on the layers that build the networks: order of the
local error against `exp(hA)`, stability functions, reduction to forward Euler; and LMResNet's steps."""

import dataclasses
import re

import keras
import numpy as np
import pytest
from scipy.linalg import expm

from odezoo import LMResNet, OdezooError
from odezoo.models._schemes import (
    BACKWARD_EULER,
    EULER,
    RK4,
    SCHEMES,
    RungeKutta,
    backward_euler_fixed_point,
)
from odezoo.models.lm_resnet.lm_resnet_layers import LinearMultistep

RUNGE_KUTTA = sorted(name for name, scheme in SCHEMES.items() if isinstance(scheme, RungeKutta))
# A fixed matrix with real and complex eigenvalues of moderate size (|λ| <= 2.1).
A = np.array([[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.5], [0.0, 0.3, -0.5]])
U0 = np.array([1.0, -0.5, 2.0])
STEPS = 0.2 / 2.0 ** np.arange(5)  # h, h/2, ..., h/16


def _linear(matrix):
    """`f(u) = matrix u` on a batch of row vectors, in float64."""
    m = keras.ops.convert_to_tensor(matrix.T, "float64")
    return lambda u: keras.ops.matmul(u, m)


def _rk_step(scheme, u, matrix):
    """One step of `scheme` with `f(u) = matrix u` (`h` inside `matrix`) shared by every stage."""
    u = keras.ops.convert_to_tensor(np.atleast_2d(u), "float64")
    return np.asarray(scheme.step(u, [_linear(matrix)] * scheme.evaluations, dtype="float64"))[0]


def _measured_order(local_error):
    """The order `p` of a one-step error `C h^(p + 1)`, from the slope of log error against log h."""
    errors = [local_error(h) for h in STEPS]
    return np.polyfit(np.log(STEPS), np.log(errors), 1)[0] - 1


def _rk_order(scheme):
    return _measured_order(lambda h: np.linalg.norm(_rk_step(scheme, U0, h * A) - expm(h * A) @ U0))


@pytest.mark.parametrize("name", RUNGE_KUTTA)
def test_runge_kutta_local_error_falls_at_the_stated_order(name):
    """Within 0.4 of the stated order: a scheme one order lower (or higher) fails."""
    scheme = SCHEMES[name]
    assert abs(_rk_order(scheme) - scheme.order) < 0.4


def test_a_perturbed_tableau_loses_its_order():
    """The order test can fail: RK4 with `a_32 = 0.51` (so `c_3 = 0.51`) is first order."""
    perturbed = dataclasses.replace(RK4, a=((), (0.5,), (0.0, 0.51), (0.0, 0.0, 1.0)))
    assert abs(_rk_order(perturbed) - 1) < 0.4
    assert abs(_rk_order(RK4) - 4) < 0.4


@pytest.mark.parametrize("k,order", [(-0.05, 1), (0.5, 1), (1.0, 2)])
def test_linear_two_step_order(k, order):
    """`LinearMultistep` from the exact `u(-h)`, `u(0)` with the branch `(1 + k) h A u`: order 1, and 2 at
    `k = 1` (the leapfrog `u_{n-1} + 2 h A u_n`)."""
    layer = LinearMultistep("lm", dtype="float64")
    layer.build(None)
    layer.k.assign(k)

    def local_error(h):
        previous, current = expm(-h * A) @ U0, U0
        residual = (1 + k) * h * A @ current
        step = layer([x[None] for x in (current, previous, residual)])
        return np.linalg.norm(np.asarray(step)[0] - expm(h * A) @ U0)

    assert abs(_measured_order(local_error) - order) < 0.4


STABILITY = {  # the docstrings' R(z), coefficients of z^0, z^1, ...
    "euler": [1, 1],
    "heun": [1, 1, 1 / 2],
    "midpoint": [1, 1, 1 / 2],
    "rk4": [1, 1, 1 / 2, 1 / 6, 1 / 24],
    "backward_euler": [1, 1, 1],
}


@pytest.mark.parametrize("name", RUNGE_KUTTA)
def test_one_step_multiplies_by_the_stated_stability_function(name):
    """On `f(u) = z u`, complex `z` as the rotation-scaling `[[x, -y], [y, x]]`: `u⁺ = R(z) u`."""
    for z in (-3.0, -0.5 + 0.8j, 0.3 - 1.7j, 1.2j):
        matrix = np.array([[z.real, -z.imag], [z.imag, z.real]])
        expected = np.polynomial.polynomial.polyval(z, STABILITY[name])
        np.testing.assert_allclose(
            _rk_step(SCHEMES[name], [1.0, 0.0], matrix), [expected.real, expected.imag]
        )


def test_backward_euler_approximation_is_stable_where_forward_euler_diverges():
    """A stiff oscillatory system: a slow mode `-0.5` and a fast, lightly damped rotation `-0.5 ± 20i`.
    At `h = 0.04` (`z = -0.02 ± 0.8i` for the fast mode) forward Euler grows by `|1 + z| = 1.25` a step;
    two fixed-point iterations of backward Euler (`|1 + z + z²| = 0.80`) decay, like the solution."""
    matrix = np.array([[-0.5, 0.0, 0.0], [0.0, -0.5, -20.0], [0.0, 20.0, -0.5]]) * 0.04
    final = {}
    for scheme in (EULER, BACKWARD_EULER):
        u = U0
        for _ in range(60):
            u = _rk_step(scheme, u, matrix)
        final[scheme.name] = np.linalg.norm(u)
    assert final["euler"] > 1e4 * np.linalg.norm(U0)
    assert final["backward_euler"] < np.linalg.norm(U0)


def test_what_reduces_to_forward_euler():
    """One-stage Runge-Kutta is forward Euler `u + f(u)`, and so is one fixed-point iteration of
    backward Euler; two iterations are `u + f(u + f(u))`."""
    u, f = np.array([[0.3, -1.2]], "float32"), lambda x: keras.ops.tanh(x) * 2.0
    np.testing.assert_array_equal(np.asarray(EULER.step(u, [f])), u + np.asarray(f(u)))
    assert backward_euler_fixed_point(1).a == EULER.a and backward_euler_fixed_point(1).b == EULER.b
    np.testing.assert_allclose(
        np.asarray(BACKWARD_EULER.step(u, [f, f])), u + 2.0 * np.tanh(u + 2.0 * np.tanh(u)), rtol=1e-6
    )


def test_malformed_schemes_are_refused():
    with pytest.raises(ValueError, match=re.escape("Received: a=((), (0.5, 0.5))")):
        RungeKutta(name="x", a=((), (0.5, 0.5)), b=(0.5, 0.5), order=2, title="x")
    with pytest.raises(ValueError, match="Scheme 'rk4' has 4 stages. Received: 2 functions"):
        RK4.step(np.zeros((1, 2)), [keras.ops.tanh] * 2)


# --- the network: which blocks a step evaluates ---

TINY = {"num_classes": 5, "image_shape": (16, 16, 3), "width": 4}


def _block(model, name):
    """Block `name`'s residual function, its layers called in inference mode."""
    chain = [model.get_layer(f"{name}_{i}_{part}") for i in (1, 2) for part in ("bn", "relu", "conv")]

    def f(x):
        for layer in chain:
            x = layer(x, training=False) if isinstance(layer, keras.layers.BatchNormalization) else layer(x)
        return np.asarray(x, "float64")

    return f


@pytest.mark.parametrize(
    "scheme,depth,stage_sharing",
    [
        ("rk4", 14, True),
        ("heun", 14, True),
        ("midpoint", 20, False),
        ("rk4", 32, False),
        ("backward_euler", 20, False),
    ],
)
def test_a_network_step_follows_the_tableau(images, scheme, depth, stage_sharing):
    """The first step of stage 1, by hand from its blocks: one block at every stage (`stage_sharing`), or
    the stages' consecutive blocks."""
    tableau = SCHEMES[scheme]
    model = LMResNet(**TINY, depth=depth, scheme=scheme, stage_sharing=stage_sharing)
    step = f"stage1_block2_{scheme}"
    names = {layer.name for layer in model.layers}
    inputs = [f"{step}_in{i + 1}" for i in range(tableau.evaluations) if f"{step}_in{i + 1}" in names]
    probe = keras.Model(
        model.inputs[0],
        [model.get_layer(n).output for n in ["stage1_block1_add", *inputs, step]],
    )
    u, *stage_inputs, output = (np.asarray(t, "float64") for t in probe(images, training=False))
    blocks = (
        ["stage1_block2"] * tableau.evaluations
        if stage_sharing
        else [f"stage1_block{j}" for j in range(2, 2 + tableau.evaluations)]
    )
    slopes, by_name = [], dict(zip(inputs, stage_inputs))
    for i, (row, block) in enumerate(zip(tableau.a, blocks)):
        x = u + sum(a * k for a, k in zip(row, slopes))
        if i:
            np.testing.assert_allclose(by_name[f"{step}_in{i + 1}"], x, atol=1e-4)
        slopes.append(_block(model, block)(x.astype("float32")))
    np.testing.assert_allclose(output, u + sum(b * k for b, k in zip(tableau.b, slopes)), atol=1e-4)
    assert not np.allclose(output, u + slopes[0], atol=1e-3)  # not the Euler step


@pytest.mark.parametrize("scheme,depth", [("heun", 20), ("rk4", 32)])
def test_every_scheme_has_the_parameters_of_the_euler_resnet(scheme, depth):
    """Shared or stacked stages: the trainable weights of the Euler ResNet of the same depth (which
    also holds LM-ResNet's `k`, frozen at 0)."""
    trainable = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_weights)  # noqa: E731
    euler = trainable(LMResNet(**TINY, depth=depth, scheme="euler"))
    assert trainable(LMResNet(**TINY, depth=depth, scheme=scheme)) == euler
    assert trainable(LMResNet(**TINY, depth=depth, scheme=scheme, stage_sharing=False)) == euler


def test_shared_stages_cost_more_evaluations_than_stacked_ones(images):
    """RK4 at depth 32: 12 steps of 4 evaluations of one block, or 3 steps of 4 blocks (as Euler)."""
    shared = LMResNet(**TINY, depth=32, scheme="rk4")
    stacked = LMResNet(**TINY, depth=32, scheme="rk4", stage_sharing=False)
    calls = lambda m, n: len(m.get_layer(n)._inbound_nodes)  # noqa: E731
    assert calls(shared, "stage2_block3_2_conv") == 4 and calls(stacked, "stage2_block3_2_conv") == 1
    assert sum(name.endswith("_rk4") for name in (layer.name for layer in shared.layers)) == 12
    assert sum(name.endswith("_rk4") for name in (layer.name for layer in stacked.layers)) == 3
    features = stacked.feature_extractor()(images)
    assert features["stage_3"].shape == (2, 4, 4, 16)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"depth": 20, "scheme": "rk4", "stage_sharing": False},
            "a stage needs 4m + 1 blocks: depth 32, 56, 80, ... for basic blocks. "
            "Received: depth=20 (3 blocks per stage)",
        ),
        ({"depth": 20, "scheme": "heun", "death_rate": 0.5}, "Received: death_rate=0.5, scheme='heun'"),
    ],
)
def test_layouts_a_scheme_cannot_take_are_refused(kwargs, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        LMResNet(**kwargs)
