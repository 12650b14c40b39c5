"""PDE-Net 2.0 model: docs/papers.md#pde-net-2 and #pde-net-test-7, #pde-net-test-8."""

import inspect
import math
import re

import numpy as np
import pytest
import sympy

from odezoo.data import pde
from odezoo.errors import OdezooError
from odezoo.models.pde_net import PDENet, PDENet2, SymNet
from odezoo.models.pde_net.pde_net import VariableCoefficientStep
from odezoo.models.pde_net.pde_net2 import PolynomialPDEStep
from odezoo.models.pde_net.pde_net_base import derivative_orders, feature_name
from odezoo.models.pde_net.pde_net_task import PDENetRollout
from odezoo.tasks import get_task

NU = 0.05


def set_pattern(net, features, products, linear):
    """Sets a SymNet to `sum linear + sum of products`; `products` is [(i, j, weight)] of feature names."""
    index = {name: k for k, name in enumerate(features)}
    for layer in net.hidden:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    out_kernel = np.zeros(net.out.kernel.shape)
    for k, (a, b, weight) in enumerate(products):
        kernel = np.zeros(net.hidden[k].kernel.shape)
        kernel[index[a], 0] = kernel[index[b], 1] = 1.0
        net.hidden[k].set_weights([kernel, np.zeros(2)])
        out_kernel[len(features) + k, 0] = weight
    for name, weight in linear.items():
        out_kernel[index[name], 0] = weight
    net.out.set_weights([out_kernel, np.zeros(1)])


def burgers_model(**kwargs):
    model = PDENet2(channels=("u", "v"), grid=32, dt=0.01, **kwargs)
    names = model.feature_names
    set_pattern(
        model.step.symnets[0], names, [("u", "u_x", -1.0), ("v", "u_y", -1.0)], {"u_xx": NU, "u_yy": NU}
    )
    set_pattern(
        model.step.symnets[1], names, [("u", "v_x", -1.0), ("v", "v_y", -1.0)], {"v_xx": NU, "v_yy": NU}
    )
    return model


def test_feature_names_follow_the_official_order():
    assert derivative_orders(2) == ((0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0))
    assert [feature_name("u", o) for o in derivative_orders(2)] == ["u", "u_x", "u_y", "u_xx", "u_xy", "u_yy"]


def test_burgers_pattern_reproduces_the_equation_to_1e12():
    model = burgers_model()
    rng = np.random.default_rng(0)
    features = rng.standard_normal((1000, len(model.feature_names)))
    f = dict(zip(model.feature_names, features.T))
    for net, want in zip(
        model.step.symnets,
        (
            NU * (f["u_xx"] + f["u_yy"]) - f["u"] * f["u_x"] - f["v"] * f["u_y"],
            NU * (f["v_xx"] + f["v_yy"]) - f["u"] * f["v_x"] - f["v"] * f["v_y"],
        ),
    ):
        np.testing.assert_allclose(np.asarray(net(features)), want, rtol=0, atol=1e-12)


def test_expression_returns_exactly_the_four_burgers_terms():
    model = burgers_model()
    u, v, u_x, u_y, u_xx, u_yy = sympy.symbols("u v u_x u_y u_xx u_yy")
    got = model.expression().rhs["u"]
    assert len(got.as_ordered_terms()) == 4
    assert sympy.simplify(got - (NU * (u_xx + u_yy) - u * u_x - v * u_y)) == 0
    assert "dropped" in str(model.expression(0.01)) and "0.01" in str(model.expression(0.01))


def test_upwinded_step_equals_the_simulators_scheme():
    """With the Burgers pattern and the initial (upwind / centred) stencils, one step of the model is
    one forward-Euler step of the data generator's 2nd-order upwind scheme on the same grid."""
    model = burgers_model(constraint="moment", acc=2)
    u = pde.simulate("burgers2d", batch=3, steps=0, seed=1, noise=0.0, start_time=0.0).u[:, 0]
    want = u + 0.01 * np.asarray(pde.burgers_rhs(NU, 2 * math.pi / 32)(u))
    np.testing.assert_allclose(np.asarray(model(u)), want, rtol=0, atol=1e-11)


def test_heat_is_recoverable_with_zero_product_weights():
    model = PDENet2(channels=("u",), grid=32, dt=0.01, num_hidden=5)
    set_pattern(model.step.symnets[0], model.feature_names, [], {"u_xx": 0.1, "u_yy": 0.1})
    assert str(model.expression().rhs["u"].evalf(6)) == "0.1*u_xx + 0.1*u_yy"
    u = pde.simulate("heat", batch=2, steps=0, seed=2, noise=0.0).u[:, 0]
    want = u + 0.01 * np.asarray(pde.heat_rhs(0.1, 2 * math.pi / 32)(u))
    np.testing.assert_allclose(np.asarray(model(u)), want, rtol=0, atol=1e-11)


def test_random_symnet_has_degree_32_with_five_product_layers():
    """One input feature keeps the expansion small: the polynomial in x has degree exactly 2^5."""
    net = SymNet(5, seed=3, dtype="float64")
    net.build((None, 1))
    x = np.random.default_rng(0).standard_normal((7, 1))
    poly = net.polynomial(prune=0.0)
    assert max(sum(mono) for mono in poly) == 32
    np.testing.assert_allclose(
        sum(c * x[:, 0] ** mono[0] for mono, c in poly.items()), np.asarray(net(x)), rtol=1e-9, atol=1e-12
    )


def test_input_gradient_matches_finite_differences():
    model = PDENet2(channels=("u", "v"), grid=8, seed=4)
    net = model.step.symnets[0]
    x = np.random.default_rng(1).standard_normal((5, 12))
    got = np.asarray(net.input_gradient(x, [1, 2, 7, 8]))
    for col, f in enumerate([1, 2, 7, 8]):
        e = np.zeros(12)
        e[f] = 1e-6
        fd = (np.asarray(net(x + e)) - np.asarray(net(x - e))) / 2e-6
        np.testing.assert_allclose(got[:, col], fd, rtol=1e-6, atol=1e-9)


def test_rollout_shape_and_first_frame():
    model = burgers_model()
    u0 = pde.simulate("burgers2d", batch=2, steps=0, seed=1, start_time=0.0).u[:, 0]
    path = model.rollout(u0, 3)
    assert path.shape == (2, 4, 32, 32, 2)
    np.testing.assert_array_equal(path[:, 0], u0)


@pytest.mark.parametrize(
    "u0, message",
    [
        (np.zeros((1, 64, 64, 2)), "The grid is 64 x 64; this model was trained on 32 x 32"),
        (np.zeros((1, 32, 16, 2)), "not square"),
        (np.full((1, 32, 32, 2), np.nan), "NaN/inf"),
        (np.tile(np.linspace(0, 1, 32)[None, None, :, None], (1, 32, 1, 2)), "does not look periodic"),
        (np.zeros((32, 32, 2)), "Add a batch axis"),
    ],
)
def test_bad_fields_are_refused_with_a_clear_message(u0, message):
    with pytest.raises(OdezooError, match=message):
        burgers_model().rollout(u0, 1)


def test_a_fractional_number_of_rollout_steps_is_refused():
    with pytest.raises(OdezooError, match=r"`steps` must be an integer >= 0. Received: steps=2.5 \(float\)"):
        burgers_model().rollout(np.zeros((1, 32, 32, 2)), 2.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 3}, "`kernel_size` must be 5 or 7 and `max_order` < kernel_size"),
        ({"kernel_size": 5, "max_order": 5}, "Received: kernel_size=5, max_order=5"),
        ({"channels": ("u", "u")}, "`channels` must be distinct names. Received: channels=('u', 'u')"),
        ({"grid": 4}, "`grid` must be at least kernel_size=5. Received: grid=4"),
    ],
)
def test_bad_arguments_are_refused_with_an_odezoo_error(kwargs, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        PDENet2(**kwargs)


def test_the_pde_net_models_do_the_familys_rollout_task():
    """`PDENetRollout` is the generic `pde_rollout` task with PDE-Net's evaluation and checks."""
    for model in (PDENet2(channels=("u",), grid=8), PDENet(grid=8, mesh=2, max_order=2)):
        assert model.TASK == "pde_rollout" and type(model.task) is PDENetRollout
    assert issubclass(PDENetRollout, type(get_task("pde_rollout")))


def test_the_defaults_are_declared_once_by_the_model():
    """The step layers take every argument they share with their model from it: no second defaults."""
    for model_cls, step_cls in ((PDENet2, PolynomialPDEStep), (PDENet, VariableCoefficientStep)):
        declared = inspect.signature(model_cls.__init__).parameters
        step = inspect.signature(step_cls.__init__).parameters.values()
        shared = [p for p in step if p.name in declared]
        assert len(shared) >= 7 and all(p.default is inspect.Parameter.empty for p in shared)


def test_float64_survives_the_config_round_trip():
    model = PDENet2(channels=("u",), grid=8)
    clone = PDENet2.from_config(model.get_config())
    assert clone.inputs[0].dtype == "float64" and clone.step.compute_dtype == "float64"
