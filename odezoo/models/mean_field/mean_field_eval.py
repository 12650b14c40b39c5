"""Measurements particular to the mean-field ResNet, which `odezoo eval` cannot repeat; the family's
commands run them (`mean_field_commands`):

    odezoo block-orders PRESET [--orders 10] [--seed 0]

prints, as JSON, the test accuracy in the trained order and under `--orders` random permutations
of the blocks (drawn from `--seed`), with their mean, minimum and standard deviation.

    odezoo continuum-limit [--out DIR]

trains residual stacks of depth L and width M on a synthetic regression task under both scalings
and prints the losses reached (and writes `DIR/continuum.json`, `DIR/continuum.png`): under the
1/(L·M) scaling the loss settles to a limit as L and M grow.
"""

import numpy as np

from odezoo._progress import progress


def random_orders(num_blocks, count, seed=0):
    """`count` random permutations of `range(num_blocks)`, never the identity when another exists."""
    rng = np.random.default_rng(seed)
    orders = []
    while len(orders) < count:
        order = rng.permutation(num_blocks)
        if num_blocks == 1 or np.any(order != np.arange(num_blocks)):
            orders.append([int(i) for i in order])
    return orders


def order_invariance(model, dataset, *, orders=10, seed=0, split="test", limit=0, data_dir=None):
    """Accuracy of `model` on `dataset` with its blocks in `orders` random orders (the trained
    order's accuracy is `odezoo eval`'s, not repeated here).

    Returns `{"random_orders": [...], "random_order_accuracy": [...], "random_order_mean": ...,
    "random_order_min": ..., "random_order_std": ..., "num_examples": ...}`.
    """
    from odezoo.tasks.image_classification import evaluate

    permutations = random_orders(model.num_blocks, orders, seed)
    results = [
        evaluate(model.reorder_blocks(p), dataset, split=split, limit=limit, data_dir=data_dir)
        for p in permutations
    ]
    accuracies = [r["accuracy"] for r in results]
    return {
        "random_orders": permutations,
        "random_order_accuracy": accuracies,
        "random_order_mean": float(np.mean(accuracies)),
        "random_order_min": float(np.min(accuracies)),
        "random_order_std": float(np.std(accuracies)),
        "num_examples": results[0]["num_examples"],
    }


# The continuum-limit experiment: y = sin(x_1) + x_2 x_3 / 2 on x ~ N(0, I_4), 512 training and
# 2,048 test points; input -> Dense(8) -> L blocks of M particles -> Dense(1); full-batch Adam.
DEPTHS = (1, 2, 4, 8, 16, 32)
WIDTHS = (4, 8, 16, 32, 64, 128, 256)


def _regression_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512 + 2048, 4)).astype("float32")
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3]).astype("float32")
    return (x[:512], y[:512]), (x[512:], y[512:])


def regression_loss(num_blocks, width, scaling, *, seed=0, steps=1000, learning_rate=1e-2):
    """Train and test mean squared error of the synthetic regression after `steps` full-batch steps."""
    import keras

    from odezoo.models.mean_field.mean_field_layers import MeanFieldBlocks

    (x, y), (x_test, y_test) = _regression_data(seed=1234)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="embed"),
            MeanFieldBlocks(num_blocks, width, scaling=scaling, name="blocks"),
            keras.layers.Dense(1, name="readout"),
        ]
    )
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    # one epoch of `steps` full batches: the same steps as `epochs=steps`, without per-epoch overhead
    model.fit(np.tile(x, (steps, 1)), np.tile(y, (steps, 1)), batch_size=len(x), shuffle=False, verbose=0)
    return {
        "train_mse": float(model.evaluate(x, y, verbose=0, batch_size=len(x))),
        "test_mse": float(model.evaluate(x_test, y_test, verbose=0, batch_size=len(x_test))),
    }


def continuum_limit(*, seeds=(0, 1), depths=DEPTHS, widths=WIDTHS, fixed_width=64, fixed_depth=8, steps=1000):
    """Losses reached vs L (M = `fixed_width`) and vs M (L = `fixed_depth`), per scaling and seed."""
    runs = [("depth", L, fixed_width) for L in depths] + [("width", fixed_depth, M) for M in widths]
    jobs = [(axis, L, M, scaling, seed) for axis, L, M in runs for scaling in ("mean_field", "standard")
            for seed in seeds]  # fmt: skip
    rows = []
    for axis, L, M, scaling, seed in progress(jobs, desc="continuum limit", unit="runs"):
        loss = regression_loss(L, M, scaling, seed=seed, steps=steps)
        rows.append({"sweep": axis, "num_blocks": L, "width": M, "scaling": scaling, "seed": seed, **loss})
    return rows


def plot_continuum(rows, path):
    """Test MSE vs L and vs M, one line per scaling (mean and range over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, sweep, key, label in ((axes[0], "depth", "num_blocks", "depth L (M = 64)"),
                                  (axes[1], "width", "width", "width M (L = 8)")):  # fmt: skip
        for scaling, style in (("mean_field", "o-"), ("standard", "s--")):
            chosen = [r for r in rows if r["sweep"] == sweep and r["scaling"] == scaling]
            xs = sorted({r[key] for r in chosen})
            losses = [[r["test_mse"] for r in chosen if r[key] == v] for v in xs]
            mean = [np.mean(v) for v in losses]
            ax.plot(xs, mean, style, label="1/(L·M)" if scaling == "mean_field" else "standard (1)")
            ax.fill_between(xs, [min(v) for v in losses], [max(v) for v in losses], alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
    axes[0].set_ylabel("test MSE after 1000 Adam steps")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
