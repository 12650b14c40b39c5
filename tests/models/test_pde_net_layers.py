"""PDE-Net's moment-constrained filters: the accuracy orders of docs/papers.md#pde-net-tests, in float64."""

import re

import keras
import numpy as np
import pytest

from odezoo.errors import OdezooError
from odezoo.models.pde_net.pde_net_layers import (
    MomentConv2D,
    SymNet,
    kernel_to_moments,
    moment_matrix,
    moments_to_kernel,
)

ORDERS = [(1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]


def _field(n):
    """u = sin(x0 + 2 x1) + cos(2 x0) sin(x1) on the periodic grid [0, 2 pi)^2 and its derivatives."""
    x0, x1 = np.meshgrid(*(2 * np.pi * np.arange(n) / n,) * 2, indexing="ij")
    s, c = np.sin(x0 + 2 * x1), np.cos(x0 + 2 * x1)
    exact = {
        (1, 0): c - 2 * np.sin(2 * x0) * np.sin(x1),
        (0, 1): 2 * c + np.cos(2 * x0) * np.cos(x1),
        (2, 0): -s - 4 * np.cos(2 * x0) * np.sin(x1),
        (1, 1): -2 * s - 2 * np.sin(2 * x0) * np.cos(x1),
        (0, 2): -4 * s - np.cos(2 * x0) * np.sin(x1),
    }
    return (s + np.cos(2 * x0) * np.sin(x1))[None, :, :, None], exact, 2 * np.pi / n


def _errors(order, sizes=(32, 64, 128), **kwargs):
    errors = []
    for n in sizes:
        u, exact, h = _field(n)
        layer = MomentConv2D(order, h=h, dtype="float64", **kwargs)
        errors.append(float(np.max(np.abs(np.asarray(layer(u))[0, :, :, 0] - exact[order]))))
    return errors


def _rate(errors, sizes=(32, 64, 128)):
    return -np.polyfit(np.log(sizes), np.log(errors), 1)[0]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kernel_size,rate", [(5, 4.0), (7, 6.0)])
def test_frozen_filters_converge_at_the_stencil_order(order, kernel_size, rate):
    errors = _errors(order, kernel_size=kernel_size)
    assert abs(_rate(errors) - rate) < 0.3, errors


def test_frozen_first_derivative_is_the_central_difference():
    """The (1, 0) 5x5 kernel is [1/12, -2/3, 0, 2/3, -1/12] / h along axis 0, error 1.6e-3 at N = 32."""
    layer = MomentConv2D((1, 0), h=0.5, dtype="float64")
    layer.build((None, 8, 8, 1))
    kernel = np.asarray(layer.kernel())
    expected = np.zeros((5, 5))
    expected[:, 2] = np.array([1 / 12, -2 / 3, 0, 2 / 3, -1 / 12]) / 0.5
    np.testing.assert_allclose(kernel, expected, atol=1e-12)
    assert _errors((1, 0), sizes=(32,))[0] == pytest.approx(1.6e-3, rel=0.05)
    assert _errors((1, 0), sizes=(32,), kernel_size=7)[0] == pytest.approx(5.1e-5, rel=0.05)


@pytest.mark.parametrize("acc", [1, 2])
@pytest.mark.parametrize("order", [(1, 0), (0, 1), (1, 1)])
def test_moment_constraint_gives_order_acc(order, acc):
    """Random N(0, 1) free moments: the filter still approximates d^o u to O(h^acc)."""
    init = keras.initializers.RandomNormal(seed=3)
    errors = _errors(order, constraint="moment", acc=acc, moments_initializer=init)
    assert abs(_rate(errors) - acc) < 0.3, errors


def test_round_trip_and_upwind_moments():
    rng = np.random.default_rng(0)
    for size in (5, 7):
        m = rng.normal(size=(size, size))
        np.testing.assert_allclose(kernel_to_moments(moments_to_kernel(m)), m, atol=1e-12)
    upwind = np.zeros((5, 5))
    upwind[2] = [0, 0, -3 / 2, 2, -1 / 2]  # PDE-Net 2.0's one-sided first derivative along axis 1
    np.testing.assert_allclose(kernel_to_moments(upwind)[0], [0, 1, 0, -1 / 3, -1 / 4], atol=1e-12)
    assert moment_matrix(3).tolist() == [[1, 1, 1], [-1, 0, 1], [0.5, 0, 0.5]]


def test_constrained_moments_stay_exact_under_training():
    u, exact, h = _field(16)
    layer = MomentConv2D((1, 0), h=h, constraint="moment", acc=2, dtype="float64")
    inputs = keras.Input((16, 16, 1), dtype="float64")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    model.fit(u, exact[(1, 0)][None, :, :, None] + 1.0, epochs=3, verbose=0)
    moments = np.asarray(layer.moment_values())
    i, j = np.indices((5, 5))
    fixed = i + j < 3
    expected = np.zeros((5, 5))
    expected[1, 0] = 1.0
    np.testing.assert_array_equal(moments[fixed], expected[fixed])
    assert np.any(moments[~fixed] != 0)  # the free moments did train


def test_zero_padding_and_channels():
    x = np.ones((2, 6, 6, 3))
    layer = MomentConv2D((0, 0), kernel_size=3, padding="zero", dtype="float64")
    out = np.asarray(layer(x))
    assert out.shape == (2, 6, 6, 3)
    np.testing.assert_allclose(out, x, atol=1e-12)  # e_00 is the identity stencil
    blurred = MomentConv2D((2, 0), kernel_size=3, padding="zero", dtype="float64")(x)
    assert np.asarray(blurred)[0, 0, 3, 0] == pytest.approx(-1.0)  # [1, -2, 1] with a zero outside


def test_config_round_trip():
    layer = MomentConv2D((0, 2), kernel_size=7, h=0.1, constraint="moment", acc=2, padding="zero")
    again = MomentConv2D.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"order": (1, 0), "kernel_size": 4}, "Received: kernel_size=4"),
        ({"order": (3, 2), "kernel_size": 5}, "Received: order=(3, 2)"),
        ({"order": (1, 0), "constraint": "soft"}, "Received: constraint='soft'"),
        ({"order": (1, 0), "padding": "reflect"}, "Received: padding='reflect'"),
        ({"order": (1, 0), "constraint": "moment", "acc": 0}, "`acc` must be >= 1. Received: acc=0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        MomentConv2D(**kwargs)


FEATURES = ["u00", "u01", "u10", "u02", "u11", "u20", "v00", "v01", "v10", "v02", "v11", "v20"]


def _symnet_with(products, linear, num_hidden=5):
    """A SymNet whose hidden layer k multiplies the two named features of `products[k]` (the
    rest multiply zeros) and whose output is `sum(linear[name] * name) - sum(products)`."""
    net = SymNet(num_hidden, dtype="float64")
    net.build((None, len(FEATURES)))
    for k, layer in enumerate(net.hidden):
        kernel = np.zeros((len(FEATURES) + k, 2))
        if k < len(products):
            kernel[FEATURES.index(products[k][0]), 0] = kernel[FEATURES.index(products[k][1]), 1] = 1.0
        layer.set_weights([kernel, np.zeros(2)])
    out = np.zeros((len(FEATURES) + num_hidden, 1))
    for name, coefficient in linear.items():
        out[FEATURES.index(name), 0] = coefficient
    out[len(FEATURES) : len(FEATURES) + len(products), 0] = -1.0
    net.out.set_weights([out, np.zeros(1)])
    return net


def test_symnet_burgers_pattern_is_exact():
    """nu (u02 + u20) - u u01 - v u10, the Burgers right-hand side for u, to 1e-12."""
    nu = 0.05
    net = _symnet_with([("u00", "u01"), ("v00", "u10")], {"u02": nu, "u20": nu})
    f = dict(zip(FEATURES, np.random.default_rng(0).normal(size=(len(FEATURES), 7, 3))))
    x = np.stack([f[name] for name in FEATURES], axis=-1)
    expected = nu * (f["u02"] + f["u20"]) - f["u00"] * f["u01"] - f["v00"] * f["u10"]
    np.testing.assert_allclose(np.asarray(net(x)), expected, rtol=0, atol=1e-12)


def test_symnet_random_init_and_degree():
    """0.1 N(0, 1) initial weights; along a line x = t d the output is a polynomial in t of
    degree <= 2^H: with H = 2, a degree-4 fit through 9 points is exact, with a t^4 term."""
    net = SymNet(2, seed=0, dtype="float64")
    net.build((None, 3))
    weights = np.concatenate([w.ravel() for w in net.get_weights()])
    assert 0.05 < weights.std() < 0.15
    rng = np.random.default_rng(3)  # unit-scale weights, so the top degree is visible
    net.set_weights([rng.normal(size=w.shape) for w in net.get_weights()])
    direction = np.random.default_rng(2).normal(size=3)
    t = np.linspace(-2, 2, 9)
    y = np.asarray(net(t[:, None] * direction))
    residual = y - np.polyval(np.polyfit(t, y, 4), t)
    assert np.max(np.abs(residual)) < 1e-10 * max(1.0, np.max(np.abs(y)))
    assert abs(np.polyfit(t, y, 4)[0]) > 1e-5  # the t^4 term (2.7e-4 here) is really there


def test_symnet_config_and_shapes():
    net = SymNet(3, seed=1)
    assert net(np.zeros((2, 4, 4, 12), "float32")).shape == (2, 4, 4)
    assert SymNet.from_config(net.get_config()).get_config() == net.get_config()
    with pytest.raises(OdezooError, match="Received: num_hidden=-1"):
        SymNet(-1)
