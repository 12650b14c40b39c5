"""PDE simulators against exact facts (issue 4, docs/papers.md#pde-net)."""

import math
import re

import numpy as np
import pytest

from odezoo.data import pde
from odezoo.errors import OdezooError
from odezoo.models.pde_net import MomentConv2D


def _grid(n):
    return np.arange(n) * 2 * math.pi / n


def test_heat_fourier_mode_decays_at_the_scheme_rate_and_the_analytic_rate():
    n, nu, t, max_dt = 128, 0.1, 0.5, 1 / 1600
    h = 2 * math.pi / n
    y, x = np.meshgrid(_grid(n), _grid(n), indexing="ij")
    u0 = np.sin(1 * y + 2 * x)[None, :, :, None]
    u = pde.heun(pde.heat_rhs(nu, h), u0, t, max_dt)
    steps = math.ceil(t / max_dt)
    dt = t / steps
    symbol = -4 / h**2 * (math.sin(1 * h / 2) ** 2 + math.sin(2 * h / 2) ** 2)
    z = nu * dt * symbol
    scheme = (1 + z + z * z / 2) ** steps  # Heun's amplification of the five-point Laplacian's eigenvalue
    np.testing.assert_allclose(u, scheme * u0, rtol=0, atol=1e-12)  # the mode stays a pure mode
    analytic = math.exp(-nu * 5 * t)
    assert abs(scheme / analytic - 1) < 5 * (h * 2) ** 2 / 12 * nu * 5 * t  # O(h^2) of the symbol


def _burgers_1d(n, t=0.5):
    """2-D Burgers with v = 0 and u a function of x (axis 1) only, on a 4 x n strip."""
    x = _grid(n)
    w = np.zeros((1, 4, n, 2))
    w[..., 0] = 0.5 + 0.5 * np.sin(x) + 0.2 * np.cos(2 * x)
    h = 2 * math.pi / n
    return pde.heun(pde.burgers_rhs(0.05, h), w, t, min(h / 20, h * h / (16 * 0.05)))  # stable for Heun


def test_burgers_1d_reduction_stays_1d_conserves_the_mean_and_converges_at_order_2():
    solutions = {n: _burgers_1d(n) for n in (32, 64, 128, 256, 1024)}
    for n, w in solutions.items():
        assert np.all(w[..., 1] == 0)  # v stays zero
        np.testing.assert_array_equal(w[:, 1:, :, 0], np.broadcast_to(w[:, :1, :, 0], w[:, 1:, :, 0].shape))
    drift = {n: abs(solutions[n][0, 0, :, 0].mean() - 0.5) for n in (32, 64, 128)}
    assert drift[128] < 1e-4  # non-conservative upwinding: the mean moves only at O(h^2)
    assert drift[32] / drift[64] > 3 and drift[64] / drift[128] > 3
    reference = solutions[1024][0, 0, :, 0]
    errors = {n: np.abs(solutions[n][0, 0, :, 0] - reference[:: 1024 // n]).max() for n in (64, 128, 256)}
    rates = [math.log2(errors[64] / errors[128]), math.log2(errors[128] / errors[256])]
    assert all(1.85 < r < 2.2 for r in rates), rates


def _frozen_block(u, dt, coefficients, n):
    h = 2 * math.pi / n
    total = u.copy()
    for order, c in coefficients.items():
        conv = MomentConv2D(order, kernel_size=7, h=h, constraint="frozen", dtype="float64")
        total += dt * c[None, :, :, None] * np.asarray(conv(u))
    return total


def test_v1_solver_matches_a_frozen_7x7_delta_t_block_and_pins_the_axes():
    """docs/papers.md#pde-net-test-6: one forward-Euler block of frozen 7 x 7 filters with the true
    coefficients agrees with the spectral solver to O(dt^2) + O(h^6); swapping the axes breaks the
    agreement."""
    eq = pde.get_equation("linear_cd")
    rng = np.random.default_rng(0)
    fine = pde._initial(eq, rng, 2)
    coarse = fine[:, :: eq.zoom, :: eq.zoom]
    n = coarse.shape[1]
    true = pde.linear_cd_coefficients(*pde.grid_coordinates(n))
    swapped = {(j, i): c for (i, j), c in true.items()}
    errors, swap_errors = [], []
    for dt in (4e-3, 2e-3, 1e-3):
        exact = pde.spectral_linear_cd(fine, dt, max_dt=dt / 4)[:, :: eq.zoom, :: eq.zoom]
        change = np.abs(exact - coarse).max()
        errors.append(np.abs(_frozen_block(coarse, dt, true, n) - exact).max() / change)
        swap_errors.append(np.abs(_frozen_block(coarse, dt, swapped, n) - exact).max() / change)
    assert (
        errors[0] / errors[1] > 1.8 and errors[1] / errors[2] > 1.8
    )  # first order in dt, relative to the change
    assert errors[-1] < 0.02
    assert min(swap_errors) > 10 * max(errors)


def test_simulation_is_deterministic_by_seed_and_follows_the_official_settings():
    a = pde.simulate("burgers2d", batch=4, steps=2, seed=7, start_time=0.1)
    b = pde.simulate("burgers2d", batch=4, steps=2, seed=7, start_time=0.1)
    c = pde.simulate("burgers2d", batch=4, steps=2, seed=8, start_time=0.1)
    np.testing.assert_array_equal(a.u, b.u)
    assert not np.allclose(a.u, c.u)
    assert a.u.shape == (4, 3, 32, 32, 2) and a.dt == 0.01 and a.h == pytest.approx(2 * math.pi / 32)
    np.testing.assert_array_equal(a.t0, [0.1, 0.1, 0.0, 0.0])  # half of the batch starts later
    clean = pde.simulate("burgers2d", batch=4, steps=2, seed=7, start_time=0.1, noise=0.0)
    noise = (a.u - clean.u) / np.std(clean.u[:, 0], axis=(1, 2), keepdims=True)[:, None]
    assert abs(np.std(noise) / 1e-3 - 1) < 0.05  # 0.001 x the std of each sample's initial frame
    first = clean.u[:, 0, ..., 0]
    assert np.allclose(np.abs(first - first.mean(axis=(1, 2), keepdims=True)).max(), 2.0, atol=0.5)


@pytest.mark.parametrize(
    "name, shape",
    [
        ("linear_cd", (2, 2, 50, 50, 1)),
        ("nonlinear_diffusion", (2, 2, 49, 49, 1)),
        ("heat", (2, 2, 32, 32, 1)),
        ("cdr", (2, 2, 32, 32, 2)),
    ],
)
def test_every_equation_simulates_finite_trajectories(name, shape):
    tr = pde.simulate(name, batch=2, steps=1, seed=0)
    assert tr.u.shape == shape and np.isfinite(tr.u).all()


def test_trajectories_round_trip_and_bad_files_are_refused(tmp_path):
    tr = pde.simulate("heat", batch=2, steps=1, seed=0)
    tr.save(tmp_path / "heat.npz")
    back = pde.load_trajectories(tmp_path / "heat.npz")
    np.testing.assert_array_equal(back.u, tr.u)
    assert back.equation == "heat" and back.dt == tr.dt
    (tmp_path / "bad.npz").write_text("not a file")
    with pytest.raises(OdezooError, match="Cannot read trajectories .* write them with `odezoo simulate`"):
        pde.load_trajectories(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"steps": 1.5}, "`steps` must be an integer >= 0. Received: steps=1.5 (float)"),
        ({"steps": "3"}, "`steps` must be an integer >= 0. Received: steps='3' (str)"),
        ({"batch": 2.7}, "`batch` must be an integer >= 1. Received: batch=2.7 (float)"),
        ({"seed": 1.5}, "`seed` must be an integer >= 0. Received: seed=1.5 (float)"),
        ({"seed": -1}, "`seed` must be >= 0. Received: seed=-1"),
        ({"noise": float("inf")}, "`noise` must be a finite number >= 0. Received: noise=inf"),
        ({"noise": "a lot"}, "`noise` must be a finite number >= 0. Received: noise='a lot'"),
        ({"start_time": -1}, "`start_time` must be a finite number >= 0. Received: start_time=-1"),
    ],
)
def test_arguments_of_the_wrong_type_or_range_are_refused_before_simulating(arguments, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        pde.simulate("heat", **{"batch": 2, **arguments})


def test_unknown_equation_and_bad_sizes_are_refused():
    with pytest.raises(OdezooError, match="Unknown equation 'burgers'.*burgers2d"):
        pde.simulate("burgers")
    with pytest.raises(OdezooError, match="batch=0"):
        pde.simulate("heat", batch=0)
