"""Cost of PDE-Net 2.0 on 2-D Burgers: simulator, training step (float64 vs float32), time to the final loss.

Measured in one process; the two dtypes are interleaved and summarised by the median, so machine
noise hits both alike. The time to reach the recipe's final loss is read from a finished run's
`metrics.json` (the sum of its stages' wall times, data simulation included).

    python bench/pde_net_cost.py [--run runs/pde_net2_burgers2d] [--repeats 5] [--steps 1,6,18]
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from odezoo.data.pde import get_equation, simulate  # noqa: E402
from odezoo.recipes.pde_net import BURGERS, stage_loss  # noqa: E402


def build(dtype):
    from odezoo.models.pde_net import PDENet2

    eq = get_equation("burgers2d")
    return PDENet2(channels=eq.channels, grid=eq.grid, dt=eq.dt, dtype=dtype)


def step_timer(model, u_obs, block):
    loss_fn = stage_loss(model, u_obs.astype(model.inputs[0].dtype), block, BURGERS)
    variables = model.trainable_variables

    @tf.function
    def value_and_gradient():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        return loss, tape.gradient(loss, variables)

    value_and_gradient()  # trace

    def run():
        start = time.perf_counter()
        value_and_gradient()
        return time.perf_counter() - start

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/pde_net2_burgers2d", help="finished recipe run folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", default="1,6,18", help="rolled-out steps of the timed loss")
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    results = {"equation": "burgers2d", "batch": args.batch, "threads": os.cpu_count()}
    simulate("burgers2d", batch=2, steps=1, seed=0)  # compile the solver
    for start_time, label in ((0.0, "t0=0"), (1.0, "half pre-evolved to t=1")):
        start = time.perf_counter()
        simulate("burgers2d", batch=10, steps=18, seed=1, start_time=start_time)
        results[f"simulate_seconds_per_trajectory ({label}, 18 steps)"] = (time.perf_counter() - start) / 10

    data = simulate("burgers2d", batch=args.batch, steps=max(int(s) for s in args.steps.split(",")), seed=2)
    models = {"float64": build("float64"), "float32": build("float32")}
    for steps in (int(s) for s in args.steps.split(",")):
        timers = {d: step_timer(m, data.u[:, : steps + 1], steps) for d, m in models.items()}
        times = {d: [] for d in timers}
        for _ in range(args.repeats):
            for d, run in timers.items():
                times[d].append(run())
        median = {d: statistics.median(t) for d, t in times.items()}
        results[f"loss_and_gradient_seconds ({steps} steps)"] = median
        results[f"float32/float64 time ratio ({steps} steps)"] = median["float32"] / median["float64"]

    metrics = Path(args.run) / "metrics.json"
    if metrics.is_file():
        history = json.loads(metrics.read_text())["history"]
        results["recipe_time_to_final_loss_seconds"] = sum(r["seconds"] for r in history)
        results["recipe_final_loss"] = history[-1]["loss"]
        results["recipe_loss_evaluations"] = sum(r["evaluations"] for r in history)
    else:
        results["recipe_time_to_final_loss_seconds"] = f"no finished run at {args.run}"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
