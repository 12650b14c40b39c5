"""PDE-Net and PDE-Net 2.0 recipes: staged training on freshly simulated data
(docs/papers.md#pde-net-v1, #pde-net-2).

PDE-Net v1 (`linear_cd`): stage `l = 0 .. 20` rolls out `max(l, 1)` delta-t blocks and minimises
`mean((u_hat(l dt) - u(l dt))^2) / var(u_0)` with L-BFGS-B, no penalty; stage 0 freezes the moments.

PDE-Net 2.0:
Stage `b` (blocks `0, 1, ..., 6, 9, 12, 15, 18` for Burgers and heat) simulates a new batch,
rolls the model out `max(b, 1)` steps from each observed first frame, and minimises

    sum_s mean(((u_hat_s - u_s) / dt)^2) + 0.005 b sum rho_1e-3(SymNet) + 0.001 b sum rho_1e-2(moments)

with SciPy's BFGS (or L-BFGS-B / Adam), warm-started from the previous stage; rho_s is the
Huber-type L1 of the official code. Stage 0 is the warm-up: moments frozen, data term only.
Float64 by default (`dtype="float32"` costs about 0.55x). Every finished stage is checkpointed, so
a killed run resumes at the next; each PDE-Net 2.0 stage record carries the learned equation and the
coefficient errors so far (`coefficient_report`), so the error can be read against the budget.
"""

import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from odezoo.data.pde import get_equation, simulate
from odezoo.errors import OdezooError
from odezoo.models.pde_net import PDENet, PDENet2
from odezoo.models.pde_net.pde_net_eval import (
    card_sections,
    coefficient_report,
    evaluate_pde,
    metric_records,
    plot,
    public,
)
from odezoo.recipes._common import RunConfig, check_positive, finish_run, start_run
from odezoo.training import minimize, read_checkpoint, write_checkpoint


@dataclass(frozen=True, kw_only=True)
class Config(RunConfig):
    """Every knob of the recipe; `odezoo train RECIPE --set key=value` changes one."""

    RESUMABLE = ("eval_trajectories", "eval_times")  # the final evaluation's: a resumed run may change them

    equation: str = "burgers2d"
    blocks: str = "0,1,2,3,4,5,6,9,12,15,18"  # stages: number of Euler steps rolled out (0 = warm-up)
    batch: int = 0  # trajectories per stage (0: the official batch of the equation)
    optimizer: str = "bfgs"  # "bfgs", "lbfgs" or "adam"
    maxiter: int = 2000  # per stage (official: 2000)
    learning_rate: float = 1e-3  # Adam only
    kernel_size: int = 5
    num_hidden: int = 5
    constraint: str = "moment"
    acc: int = 2
    upwind: bool = True
    symnet_penalty: float = 0.005
    moment_penalty: float = 0.001
    dtype: str = "float64"  # of the model's weights and of the loss ("float64" or "float32")
    eval_trajectories: int = 100
    eval_times: str = "1,2,4"  # rollout times of the final evaluation

    mesh: int = 20  # v1: cells per axis of the coefficient interpolants
    max_order: int = 0  # highest derivative order of the model (0: the paper's, 4 for linear_cd, else 2)

    def preset_name(self):
        version = get_equation(self.equation).version
        return self.preset or f"pde_net{'2' if version == 2 else ''}_{self.equation}"

    def block_list(self):
        try:
            blocks = [int(b) for b in self.blocks.split(",")]
        except ValueError:
            raise OdezooError(
                f"`blocks` must be comma-separated integers. Received: {self.blocks!r}"
            ) from None
        if not blocks or min(blocks) < 0:
            raise OdezooError(f"`blocks` must be non-negative integers. Received: {self.blocks!r}")
        return blocks

    def times(self):
        """The rollout times of `eval_times`."""
        try:
            times = tuple(float(t) for t in self.eval_times.split(","))
        except ValueError:
            times = ()
        if not times or not all(math.isfinite(t) and t > 0 for t in times):
            raise OdezooError(
                f"`eval_times` must be positive times separated by commas, e.g. '1,2,4'. Received: "
                f"eval_times={self.eval_times!r}"
            )
        return times

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        get_equation(self.equation)
        self.block_list()
        self.times()
        if self.optimizer not in ("bfgs", "lbfgs", "adam"):
            raise OdezooError(f"Unknown optimizer {self.optimizer!r}; choose 'bfgs', 'lbfgs' or 'adam'.")
        if self.dtype not in ("float64", "float32"):
            raise OdezooError(f"`dtype` must be 'float64' or 'float32'. Received: {self.dtype!r}")
        check_positive(self, "maxiter", "eval_trajectories", "mesh")
        check_positive(self, "batch", "max_order", "num_hidden", minimum=0)
        check_positive(self, "symnet_penalty", "moment_penalty", minimum=0)


BURGERS = Config()
HEAT = Config(equation="heat")
CDR = Config(equation="cdr", blocks="0,0,0,1,2,3,4,5,6,9")
LINEAR_CD = Config(
    equation="linear_cd", blocks=",".join(str(b) for b in range(21)), optimizer="lbfgs", acc=1, maxiter=20_000
)
CONFIGS = (BURGERS, HEAT, CDR, LINEAR_CD)


DESCRIPTIONS = {
    "pde_net2_burgers2d": "PDE-Net 2.0 that learned 2-D Burgers (nu = 0.05) from simulated trajectories.",
    "pde_net2_heat": "PDE-Net 2.0 that learned the heat equation (nu = 0.1) from simulated trajectories.",
    "pde_net_linear_cd": "PDE-Net v1 that learned a variable-coefficient convection-diffusion equation.",
}


def huber_l1(x, s):
    """`x^2 / (2 s)` where `|x| < s`, else `|x| - s / 2` (the official sparsity penalty)."""
    import tensorflow as tf

    a = tf.abs(x)
    return tf.reduce_sum(tf.where(a < s, a * a / (2 * s), a - s / 2))


def build_model(config):
    eq = get_equation(config.equation)
    if eq.version == 1:
        return PDENet(
            grid=eq.grid,
            dt=eq.dt,
            kernel_size=config.kernel_size,
            constraint=config.constraint,
            acc=config.acc,
            padding="periodic" if eq.boundary == "periodic" else "zero",
            mesh=config.mesh,
            source=eq.name == "nonlinear_diffusion",
            max_order=config.max_order or (2 if eq.name == "nonlinear_diffusion" else 4),
            dtype=config.dtype,
            name=config.preset_name(),
        )
    return PDENet2(
        channels=eq.channels,
        grid=eq.grid,
        dt=eq.dt,
        kernel_size=config.kernel_size,
        max_order=config.max_order or 2,
        num_hidden=config.num_hidden,
        constraint=config.constraint,
        acc=config.acc,
        upwind=config.upwind,
        seed=config.seed,
        dtype=config.dtype,
        name=config.preset_name(),
    )


def stage_loss(model, u_obs, block, config):
    """The loss of one stage as a closure over the observed frames `u_obs` (batch, steps+1, ...)."""
    import tensorflow as tf

    u_obs = tf.constant(u_obs, model.inputs[0].dtype)
    step = model.step
    if isinstance(model, PDENet):
        scale = tf.math.reduce_variance(u_obs[:, 0])

        def v1_loss():
            u = u_obs[:, 0]
            for _ in range(1, u_obs.shape[1]):
                u = model(u, training=True)
            return tf.reduce_mean(tf.square(u - u_obs[:, -1])) / scale

        return v1_loss

    def loss():
        u, data = u_obs[:, 0], 0.0
        for s in range(1, u_obs.shape[1]):
            u = model(u, training=True)
            data += tf.reduce_mean(tf.square((u - u_obs[:, s]) / model.dt))
        if block == 0:
            return data
        penalty = sum(huber_l1(w, 1e-3) for net in step.symnets for w in net.trainable_weights)
        moments = [
            c.moments * tf.cast(1.0 - c._fixed, c.moments.dtype)
            for c in step.filters
            if c.trainable and c.constraint != "frozen"
        ]
        penalty = block * config.symnet_penalty * penalty
        if moments:
            penalty += block * config.moment_penalty * sum(huber_l1(m, 1e-2) for m in moments)
        return data + penalty

    return loss


def train(config, workdir, *, callbacks=()):
    """Runs the stages, evaluates on fresh trajectories and writes a preset folder.

    `callbacks` are called with each finished stage's record (after its checkpoint is written).

    Writes `workdir/config.json`, `workdir/checkpoints/` (resumed per stage), `workdir/metrics.json`
    and `workdir/<preset>/`.
    """
    workdir, model = start_run(workdir, config, lambda: build_model(config))
    history = _run_stages(model, config, workdir / "checkpoints", callbacks)
    for conv in _filters(model):
        conv.trainable = config.constraint != "frozen"
    full = evaluate_pde(
        model,
        config.equation,
        trajectories=config.eval_trajectories,
        times=config.times(),
        seed=10_000 + config.seed,
    )
    metrics = public(full)
    metrics["train_seconds"] = sum(r["seconds"] for r in history)
    preset = config.preset_name()
    description = DESCRIPTIONS.get(preset, f"PDE-Net trained on simulated {config.equation} data.")
    with tempfile.TemporaryDirectory() as tmp:
        assets = {}
        try:
            plot(full, Path(tmp) / "rollout.png", model.dt)
            assets["rollout.png"] = Path(tmp) / "rollout.png"
        except ImportError as err:
            print(f"no plot: {err}", flush=True)
        return finish_run(
            workdir,
            model,
            config,
            summary=metrics,
            history=history,
            metadata={
                "description": description,
                "dataset": config.equation,
                "metrics": metric_records(metrics, f"odezoo eval {preset}"),
                "pde_report": metrics,
                "card_sections": card_sections(metrics),
                "equation": config.equation,
            },
            assets=assets,
        )


def _run_stages(model, config, checkpoints, callbacks):
    """Runs the stages not yet in `checkpoints` (resuming after the last one written there), writing a
    checkpoint after each; returns the records of all stages."""
    blocks = config.block_list()
    checkpoints.mkdir(exist_ok=True)
    done, weights, history = read_checkpoint(checkpoints, "stage")
    if done:
        model.load_weights(weights)
        print(f"resumed after stage {done} of {len(blocks)}", flush=True)
    for index in tqdm(range(done, len(blocks)), initial=done, total=len(blocks), desc="stages", disable=None):
        history.append(_run_stage(model, config, index, blocks[index]))
        write_checkpoint(checkpoints, model, "stage", index + 1, history)
        print(json.dumps(history[-1]), flush=True)
        for callback in callbacks:
            callback(history[-1])
    return history


def _run_stage(model, config, index, block):
    """Stage `index`: simulates its data, rolls out `max(block, 1)` steps, minimises; returns its record
    (with the learned equation and the coefficient errors so far for PDE-Net 2.0)."""
    start = time.perf_counter()
    data = simulate(
        config.equation, batch=config.batch or None, steps=max(block, 1), seed=1000 * config.seed + index
    )
    simulated = time.perf_counter() - start
    for conv in _filters(model):
        conv.trainable = block > 0
    loss_fn = stage_loss(model, data.u, block, config)
    before = float(loss_fn())
    result = minimize(
        loss_fn,
        model.trainable_variables,
        method=config.optimizer,
        maxiter=config.maxiter,
        learning_rate=config.learning_rate,
    )
    record = {
        "stage": index + 1,
        "block": block,
        "loss_before": before,
        **result,
        "simulate_seconds": simulated,
        "seconds": time.perf_counter() - start,
    }
    if get_equation(config.equation).version == 2:
        report = coefficient_report(model, config.equation)
        record.update({k: report[k] for k in ("learned", "relative_errors", "largest_spurious")})
    return record


def _filters(model):
    step = model.step
    return [*step.filters] + [c for c in (getattr(step, "identity", None), getattr(step, "value", None)) if c]
