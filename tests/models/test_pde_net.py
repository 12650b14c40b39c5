"""PDE-Net v1 model: delta-t block, coefficient interpolants, learned source (docs/papers.md#pde-net-v1)."""

import math

import numpy as np
import pytest

from odezoo.data import pde
from odezoo.errors import OdezooError
from odezoo.models.pde_net import MomentConv2D, PDENet
from odezoo.models.pde_net.pde_net import lagrange_weights, periodic_interpolation_matrix


def test_periodic_quadratic_interpolation_is_a_partition_of_unity_and_third_order():
    for cells in (5, 10, 20):
        p = periodic_interpolation_matrix(100, cells)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-13)
    errors = []
    for cells in (10, 20, 40):
        nodes = np.arange(2 * cells) * 2 * math.pi / (2 * cells)
        x = np.arange(200) * 2 * math.pi / 200
        errors.append(np.abs(periodic_interpolation_matrix(200, cells) @ np.sin(nodes) - np.sin(x)).max())
    assert 2.7 < math.log2(errors[0] / errors[1]) < 3.3 and 2.7 < math.log2(errors[1] / errors[2]) < 3.3


def test_lagrange_weights_reproduce_polynomials_of_their_degree():
    s = np.linspace(0, 1, 17)
    nodes = np.linspace(0, 1, 5)
    poly = lambda t: 1 - 2 * t + 3 * t**3 - t**4  # noqa: E731
    np.testing.assert_allclose(lagrange_weights(s, 4) @ poly(nodes), poly(s), atol=1e-13)


def test_block_is_identity_filter_plus_dt_times_the_coefficient_weighted_derivatives():
    model = PDENet(grid=16, dt=0.015, kernel_size=5, max_order=2, mesh=4)
    step = model.step
    rng = np.random.default_rng(0)
    step.coefficients.assign(rng.standard_normal(step.coefficients.shape))
    u = rng.standard_normal((2, 16, 16, 1))
    fields = model.coefficients()
    want = np.asarray(step.identity(u))
    for conv, name in zip(step.filters, model.feature_names):
        want = want + 0.015 * fields[name][None, :, :, None] * np.asarray(conv(u))
    np.testing.assert_allclose(np.asarray(model(u)), want, rtol=0, atol=1e-12)
    assert model.feature_names == ["u", "u_x", "u_y", "u_xx", "u_xy", "u_yy"]


def test_constant_true_coefficients_give_a_frozen_block_of_the_heat_like_equation():
    """Constant coefficients are interpolated exactly (partition of unity): with 0.3 u_xx + 0.2 u_yy the
    block equals u + dt (0.3 D02 u + 0.2 D20 u) with the frozen filters."""
    model = PDENet(grid=32, dt=0.01, kernel_size=7, max_order=2, constraint="frozen", mesh=8)
    values = np.zeros(model.step.coefficients.shape)
    values[model.feature_names.index("u_xx")] = 0.3
    values[model.feature_names.index("u_yy")] = 0.2
    model.step.coefficients.assign(values)
    u = pde.simulate("heat", batch=2, steps=0, seed=0, noise=0.0).u[:, 0]
    h = 2 * math.pi / 32
    d02 = MomentConv2D((0, 2), kernel_size=7, h=h, dtype="float64")
    d20 = MomentConv2D((2, 0), kernel_size=7, h=h, dtype="float64")
    want = u + 0.01 * (0.3 * np.asarray(d02(u)) + 0.2 * np.asarray(d20(u)))
    np.testing.assert_allclose(np.asarray(model(u)), want, rtol=0, atol=1e-11)


def test_learned_source_is_a_piecewise_quartic_that_reproduces_quartics():
    model = PDENet(grid=16, dt=0.01, max_order=2, padding="zero", source=True, mesh=4)
    step = model.step
    nodes = np.linspace(-15, 15, 4 * 20 + 1)
    poly = lambda v: 0.5 - 0.1 * v + 0.01 * v**2 - 1e-4 * v**4  # noqa: E731
    step.source_values.assign(poly(nodes))
    v = np.linspace(-14.9, 14.9, 301)
    np.testing.assert_allclose(np.asarray(step.source_term(v)), poly(v), atol=1e-10)
    assert "u" not in model.feature_names and not model.periodic


def test_config_round_trip_and_bad_arguments():
    model = PDENet(grid=16, mesh=4)
    clone = PDENet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    with pytest.raises(OdezooError, match="kernel_size` must be 5 or 7"):
        PDENet(kernel_size=9)
    with pytest.raises(OdezooError, match="max_order"):
        PDENet(kernel_size=5, max_order=5)
    with pytest.raises(
        OdezooError, match=r"^`padding` must be 'periodic' or 'zero'. Received: padding='reflect'$"
    ):
        PDENet(padding="reflect")


def test_effective_coefficients_add_what_the_identity_filter_and_free_moments_learn():
    model = PDENet(grid=16, dt=0.01, kernel_size=5, max_order=2, mesh=4)
    step, h = model.step, 2 * math.pi / 16
    rng = np.random.default_rng(1)
    step.coefficients.assign(rng.standard_normal(step.coefficients.shape))
    free = rng.standard_normal((5, 5))
    step.identity.moments.assign(free)  # m00 stays 1; m10, m01, ... are free (acc = 1)
    effective, fields = model.effective_coefficients(), model.coefficients()
    identity = step.identity.moment_values().numpy()
    want = identity[1, 0] * h / 0.01 + sum(  # every filter's (1, 0) moment, itself m = 1 for u_y
        fields[name] * conv.moment_values().numpy()[1, 0] * h ** (1 - sum(conv.order))
        for name, conv in zip(model.feature_names, step.filters)
    )
    np.testing.assert_allclose(effective["u_y"], want, atol=1e-10)
    assert step.filters[model.feature_names.index("u_y")].moment_values().numpy()[1, 0] == 1.0
    assert set(effective) >= {"u", "u_x", "u_y", "u_xx", "u_xy", "u_yy", "u_xxxx"}


def test_effective_coefficients_equal_the_fields_when_every_filter_is_frozen():
    model = PDENet(grid=16, dt=0.01, kernel_size=5, max_order=2, constraint="frozen", mesh=4)
    model.step.coefficients.assign(np.random.default_rng(2).standard_normal(model.step.coefficients.shape))
    effective, fields = model.effective_coefficients(), model.coefficients()
    for name, field in fields.items():
        np.testing.assert_allclose(effective[name], field, atol=1e-9)
    assert np.abs(effective["u_xxx"]).max() < 1e-9  # terms the filters do not target stay zero
