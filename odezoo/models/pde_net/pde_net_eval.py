"""Evaluation of learned PDEs: coefficient recovery and long-rollout error on fresh trajectories."""

import numpy as np

from odezoo.data.pde import get_equation, simulate
from odezoo.errors import OdezooError
from odezoo.models.pde_net.pde_net_base import feature_name

TIMES = (1.0, 2.0, 4.0)
SPURIOUS_FLOOR = 1e-4  # coefficients below this are not read when looking for spurious terms


def field_report(model, equation):
    """PDE-Net v1: relative L2 error of every effective coefficient field (`PDENet.effective_coefficients`)
    against the true one on the grid, and the largest |coefficient| among the terms the true PDE lacks."""
    from odezoo.data.pde import grid_coordinates, linear_cd_coefficients

    eq = get_equation(equation)
    if eq.name != "linear_cd":
        raise OdezooError(f"Field reports exist for linear_cd only. Received: {equation!r}")
    learned = model.effective_coefficients()
    true = {feature_name("u", o): f for o, f in linear_cd_coefficients(*grid_coordinates(model.grid)).items()}
    errors = {f"u: {t}": float(np.linalg.norm(learned[t] - f) / np.linalg.norm(f)) for t, f in true.items()}
    spurious = max(
        ((t, float(np.abs(f).max())) for t, f in learned.items() if t not in true), key=lambda p: p[1]
    )
    return {
        "learned": {
            "u": " + ".join(f"({f.mean():.4g} ± {f.std():.3g}) {t}" for t, f in learned.items() if t in true)
        },
        "true": {"u": " + ".join(f"({f.mean():.4g} ± {f.std():.3g}) {t}" for t, f in true.items())},
        "threshold": 0.0,
        "relative_errors": errors,
        "max_relative_error": max(errors.values()),
        "largest_spurious": {"term": f"u: {spurious[0]}", "value": spurious[1]},
    }


def coefficient_report(model, equation, threshold=1e-2):
    """Compares `model.expression()` with the true PDE term by term.

    Returns `{"learned": {channel: str}, "true": {...}, "threshold": t, "relative_errors":
    {"channel: term": err}, "max_relative_error": ..., "largest_spurious": {"term", "value"}}`,
    the largest spurious coefficient being read from the polynomial chopped at `SPURIOUS_FLOOR` only.
    """
    import sympy

    eq = get_equation(equation)
    learned = model.expression(threshold)
    full = model.expression(SPURIOUS_FLOOR).coefficients()
    names = {s: sympy.Symbol(s) for s in model.feature_names}
    errors, spurious = {}, ("", 0.0)
    for channel, truth in eq.truth.items():
        true_terms = {sympy.sympify(term, locals=names): float(value) for term, value in truth.items()}
        got = {mono: float(c) for mono, c in full[channel].items()}
        for mono, value in true_terms.items():
            errors[f"{channel}: {mono}"] = abs(got.get(mono, 0.0) - value) / abs(value)
        for mono, c in got.items():
            if mono not in true_terms and abs(c) > abs(spurious[1]):
                spurious = (f"{channel}: {mono}", c)
    return {
        "learned": {c: str(e.evalf(6)) for c, e in learned.rhs.items()},
        "true": {c: " + ".join(f"{v:g}*{t}" for t, v in truth.items()) for c, truth in eq.truth.items()},
        "threshold": threshold,
        "relative_errors": errors,
        "max_relative_error": max(errors.values()),
        "largest_spurious": {"term": spurious[0], "value": spurious[1]},
    }


def relative_error(u, truth):
    """`sqrt(sum_c mean((u - truth)^2) / sum_c var(truth))` per field of a batch `(batch, ..., channels)`:
    the rollout error of the cards; inf/nan where `u` diverged."""
    spatial = tuple(range(1, truth.ndim - 1))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging model reports inf/nan
        num = np.mean((u - truth) ** 2, axis=(*spatial, truth.ndim - 1))
        den = np.mean(np.var(truth, axis=spatial), axis=-1)
        return np.sqrt(num / den)


def rollout_errors(model, trajectories, *, progress=None):
    """`relative_error` of the model's rollout per trajectory and step, and the model's path from the
    first trajectory's first frame.

    `trajectories` is `(batch, steps + 1, grid, grid, channels)`; returns `((batch, steps + 1)` errors,
    `(steps + 1, grid, grid, channels)` path). `progress` is called once per step.
    """
    truth = np.asarray(trajectories)
    u = truth[:, 0].astype(model.inputs[0].dtype)
    errors, path = [np.zeros(truth.shape[0])], [u[0]]
    for s in range(1, truth.shape[1]):
        u = model.predict_on_batch(u)  # the compiled step
        path.append(u[0])
        errors.append(relative_error(u, truth[:, s]))
        if progress:
            progress()
    return np.stack(errors, axis=1), np.stack(path)


def evaluate_pde(model, equation, *, trajectories=100, times=TIMES, seed=10_000, threshold=1e-2):
    """Coefficient report plus the rollout error at `times` on `trajectories` fresh, noise-free trajectories.

    The model starts from the first true frame and runs `t / dt` steps; the error statistics are the
    median and the 25-75 % band over the trajectories.
    """
    from tqdm.auto import tqdm

    eq = get_equation(equation)
    steps = max(round(t / eq.dt) for t in times)
    data = simulate(equation, batch=trajectories, steps=steps, seed=seed, noise=0.0, progress=True)
    with tqdm(total=steps, desc=f"roll out {model.name} x {trajectories}", unit="step", disable=None) as bar:
        errors, path = rollout_errors(model, data.u, progress=lambda: bar.update(1))
    rollout = {}
    for t in times:
        column = errors[:, round(t / eq.dt)]
        rollout[f"t={round(t / eq.dt) * eq.dt:.3g}"] = {
            "median": float(np.median(column)),
            "q25": float(np.quantile(column, 0.25)),
            "q75": float(np.quantile(column, 0.75)),
        }
    return {
        "equation": equation,
        "trajectories": trajectories,
        "seed": seed,
        "rollout_relative_error": rollout,
        **(
            field_report(model, equation)
            if eq.version == 1
            else coefficient_report(model, equation, threshold)
        ),
        "_errors": errors,
        "_example": (data.u[0], path),
    }


def public(metrics):
    """`metrics` without the arrays `evaluate_pde` keeps for plotting."""
    return {k: v for k, v in metrics.items() if not k.startswith("_")}


def metric_records(metrics, command):
    """The preset-card records (`dataset`, `split`, `metric`, `value`, `command`) of an evaluation."""
    split = f"{metrics['trajectories']} fresh trajectories (seed {metrics['seed']})"
    records = [
        {
            "dataset": f"{metrics['equation']} (simulated)",
            "split": split,
            "metric": f"median relative error, {t}",
            "value": v["median"],
            "command": command,
        }
        for t, v in metrics["rollout_relative_error"].items()
    ]
    records.append(
        {
            "dataset": f"{metrics['equation']} (simulated)",
            "split": "learned PDE",
            "metric": "max relative coefficient error",
            "value": metrics["max_relative_error"],
            "command": command,
        }
    )
    return records


def card_sections(metrics):
    """Markdown for a preset card: learned vs true PDE, coefficient errors, rollout errors."""
    learned = "\n".join(f"    {c}_t = {e}" for c, e in metrics["learned"].items())
    true = "\n".join(f"    {c}_t = {e}" for c, e in metrics["true"].items())
    errors = "\n".join(f"| {term} | {err:.2%} |" for term, err in metrics["relative_errors"].items())
    spurious = metrics["largest_spurious"]
    rollout = "\n".join(
        f"| {t} | {v['median']:.4f} | {v['q25']:.4f} – {v['q75']:.4f} |"
        for t, v in metrics["rollout_relative_error"].items()
    )
    return {
        "Learned equation": (
            f"Learned (terms with |coefficient| < {metrics['threshold']:g} dropped):\n\n{learned}\n\n"
            f"True:\n\n{true}\n\n| term | relative error |\n|---|---|\n{errors}\n\n"
            f"Largest spurious coefficient: {spurious['value']:.2e} ({spurious['term']})."
        ),
        "Rollout error": (
            f"Relative error sqrt(sum_c mean((u_hat - u)^2) / sum_c var(u)) on {metrics['trajectories']} "
            f"fresh noise-free trajectories:\n\n| time | median | 25–75 % |\n|---|---|---|\n{rollout}\n\n"
            "![rollout error and one field](rollout.png)"
        ),
    }


def plot(metrics, path, dt):
    """Writes a PNG: the error curve (median, 25-75 % band) and one true vs predicted field at the end."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plots need matplotlib: pip install 'odezoo[plots]'.") from None
    errors = metrics["_errors"]
    truth, pred = metrics["_example"]
    t = np.arange(errors.shape[1]) * dt
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(t, np.median(errors, 0), label="median")
    axes[0].fill_between(
        t, np.quantile(errors, 0.25, 0), np.quantile(errors, 0.75, 0), alpha=0.3, label="25-75 %"
    )
    axes[0].set(
        xlabel="t", ylabel="relative error", yscale="log", title=f"{metrics['equation']}: rollout error"
    )
    axes[0].legend()
    lim = np.abs(truth[-1, ..., 0]).max()
    for ax, field, title in ((axes[1], truth, "true"), (axes[2], pred, "PDE-Net")):
        im = ax.imshow(field[-1, ..., 0], cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower")
        ax.set(title=f"{title}, channel 0, t = {t[-1]:g}", xlabel="x (axis 1)", ylabel="y (axis 0)")
    fig.colorbar(im, ax=axes[1:].tolist(), shrink=0.8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
