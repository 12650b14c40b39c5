"""What a forward-Euler model on the observed grid can reach on the Burgers data at all (issue 13 §3).

The data of `pde_net2_burgers2d` come from second-order upwind convection and the five-point Laplacian
on a 128² grid with Heun (RK2) steps <= 1/1600. PDE-Net 2.0 sees them on the 32² grid and steps them
by forward Euler with dt = 0.01, through 5×5 filters it learns. This script steps the true equation
`w_t = nu Lap w - c (u w_x + v w_y)` (nu = 0.05, c = 1) by forward Euler with dt = 0.01 on the 32²
grid with two fixed spatial discretisations, `upwind2` (the simulator's own stencils) and `spectral`
(FFT derivatives: exact for the grid's Fourier modes, so what is left is Euler's time-stepping error
and the grid), and measures for each

1. the (nu, c) that fit noise-free training-like data best (a batch of 50 from seed 0, half first
   evolved to t = 1) under each stage's loss, `sum_s mean(((w_hat_s - w_s) / dt)^2)` over the
   stage's `b` steps, without the sparsity penalty: the coefficients a model of this form that fits
   perfectly would report, against the truth;
2. with the true coefficients and with block 18's fit, the rollout error on the card's evaluation set
   (`odezoo eval pde_net2_burgers2d`: 100 fresh, noise-free trajectories, seed 10000) at t = 1, 2, 4
   (inf where a rollout diverged; with FFT derivatives forward Euler has no upwinding to damp it).

    python bench/pde_net_scheme_floor.py [--times 1,2,4] [--out bench/results/pde_net_scheme_floor.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np

BLOCKS = (1, 2, 4, 6, 9, 12, 15, 18)


def upwind2(h, dt):
    """`(w, nu, c) -> w + dt (nu Lap w - c (u w_x + v w_y))`, compiled, with the simulator's stencils."""
    import tensorflow as tf

    from odezoo.data.pde import burgers_rhs, laplacian

    transport = burgers_rhs(0.0, h)  # nu = 0: minus the upwind advection alone

    @tf.function
    def step(w, nu, c):
        return w + dt * (nu * laplacian(w, h) + c * transport(w))

    return lambda w, nu, c: step(w, tf.constant(nu, tf.float64), tf.constant(c, tf.float64)).numpy()


def spectral(h, dt):
    """The same Euler step with FFT derivatives on the periodic grid (x along axis 2, y along axis 1)."""
    n = round(2 * np.pi / h)
    k = np.fft.fftfreq(n, d=h) * 2 * np.pi
    ky, kx = k[None, :, None, None], k[None, None, :, None]

    def step(w, nu, c):
        spectrum = np.fft.fft2(w, axes=(1, 2))
        dx, dy, lap = (
            np.fft.ifft2(f * spectrum, axes=(1, 2)).real for f in (1j * kx, 1j * ky, -(kx**2 + ky**2))
        )
        return w + dt * (nu * lap - c * (w[..., :1] * dx + w[..., 1:] * dy))

    return step


SCHEMES = {"upwind2": upwind2, "spectral": spectral}


def rollout(step, w0, steps, nu, c):
    """The `steps + 1` frames from `w0`."""
    frames = [w0]
    for _ in range(steps):
        frames.append(step(frames[-1], nu, c))
    return np.stack(frames, axis=1)


def relative_errors(path, truth):
    """`relative_error` (the evaluation's) per trajectory and frame of `(batch, frames, ...)` paths;
    inf where the rollout diverged."""
    from odezoo.models.pde_net.pde_net_eval import relative_error

    errors = np.stack([relative_error(path[:, s], truth[:, s]) for s in range(truth.shape[1])], axis=1)
    return np.where(np.isfinite(errors), errors, np.inf)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", default="1,2,4", help="rollout times of the evaluation")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    from scipy.optimize import minimize

    from odezoo.data.pde import get_equation, simulate

    eq = get_equation("burgers2d")
    train = simulate("burgers2d", batch=50, steps=max(BLOCKS), seed=0, noise=0.0).u
    times = [float(t) for t in args.times.split(",")]
    steps = max(round(t / eq.dt) for t in times)
    test = simulate("burgers2d", batch=100, steps=steps, seed=10_000, noise=0.0).u
    result = {}
    for name, scheme in SCHEMES.items():
        step, fits = scheme(eq.h, eq.dt), []
        for block in BLOCKS:
            truth = train[:, : block + 1]

            def loss(params, truth=truth, block=block):
                path = rollout(step, truth[:, 0], block, *params)
                return float(np.sum(np.mean(((path[:, 1:] - truth[:, 1:]) / eq.dt) ** 2, axis=(0, 2, 3, 4))))

            best = minimize(loss, [0.05, 1.0], method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-8})
            nu, c = (float(p) for p in best.x)
            truth_loss = loss([0.05, 1.0])
            fits.append({"block": block, "nu": nu, "c": c, "loss": float(best.fun), "loss_truth": truth_loss})
            print(f"{name} block {block:>2}: best nu {nu:.4f} ({nu / 0.05 - 1:+.1%}), "
                  f"c {c:.4f} ({c - 1:+.1%}); loss {best.fun:.4g} vs {truth_loss:.4g} at the truth",
                  flush=True)  # fmt: skip
        rollout_error = {}
        for label, (nu, c) in {"truth": (0.05, 1.0), "fit": (fits[-1]["nu"], fits[-1]["c"])}.items():
            with np.errstate(over="ignore", invalid="ignore"):
                errors = relative_errors(rollout(step, test[:, 0], steps, nu, c), test)
            for t in times:
                column = errors[:, round(t / eq.dt)]
                q25, median, q75 = (float(np.quantile(column, q)) for q in (0.25, 0.5, 0.75))
                diverged = float(np.mean(np.isinf(column)))
                rollout_error[f"{label}, t={t:g}"] = {
                    "median": median,
                    "q25": q25,
                    "q75": q75,
                    "diverged": diverged,
                }
                print(f"{name}, nu {nu:.4f}, c {c:.4f}: median relative error at t={t:g} {median:.2%} "
                      f"(25-75 %: {q25:.2%} - {q75:.2%}; diverged: {diverged:.0%})", flush=True)  # fmt: skip
        result[name] = {"fits": fits, "rollout_relative_error": rollout_error}
    if args.out:
        result["command"] = "python bench/pde_net_scheme_floor.py"
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
