"""`odezoo block-orders` and `odezoo continuum-limit`: the mean-field ResNet's measurements that
`odezoo eval` cannot repeat (see `odezoo.commands`; the measurements are in `mean_field_eval`)."""

from odezoo.commands import Command
from odezoo.errors import OdezooError


def _orders_arguments(p):
    p.add_argument("--orders", type=int, default=10, help="random block orders (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the orders (default 0)")
    p.add_argument("--dataset", default=None, help="data set (default: the preset's)")
    p.add_argument("--limit", type=int, default=0, help="first N test examples only (0: all)")
    p.add_argument("--data-dir", default=None, help="TensorFlow Datasets data folder")


def block_orders_command(args, *, model, metadata):
    """Test accuracy of a `MeanFieldResNet` preset in its trained block order and under `args.orders`
    random orders (`mean_field_eval.order_invariance`)."""
    # deferred: the CLI parses without TensorFlow
    from odezoo.models.mean_field.mean_field import MeanFieldResNet
    from odezoo.models.mean_field.mean_field_eval import order_invariance
    from odezoo.tasks.image_classification import evaluate

    if not isinstance(model, MeanFieldResNet):
        raise OdezooError(
            f"Block orders exist in MeanFieldResNet presets only; {args.preset!r} is a "
            f"{type(model).__name__}. `odezoo list` shows the presets with their models."
        )
    if args.orders < 1 or args.limit < 0:
        raise OdezooError(
            f"--orders must be >= 1 and --limit >= 0. Received: --orders {args.orders} --limit {args.limit}"
        )
    dataset = args.dataset or metadata.get("dataset") or "fashion_mnist"
    data = {"split": "test", "limit": args.limit, "data_dir": args.data_dir}
    trained_order = evaluate(model, dataset, **data)["accuracy"]
    result = order_invariance(model, dataset, orders=args.orders, seed=args.seed, **data)
    return {"preset": args.preset, "dataset": dataset, "accuracy": trained_order, **result}


def _continuum_arguments(p):
    p.add_argument("--out", default=".", help="folder for continuum.json and continuum.png")


def continuum_command(args):
    """The continuum-limit experiment (`mean_field_eval.continuum_limit`): its rows, also written to
    `args.out`/continuum.json, and their plot to `args.out`/continuum.png."""
    from pathlib import Path

    # deferred: the CLI parses without TensorFlow
    from odezoo._files import check_folder, write_json_atomic
    from odezoo.models.mean_field.mean_field_eval import continuum_limit, plot_continuum

    out = Path(args.out)
    check_folder(out, "--out")  # before the runs, not after them
    rows = continuum_limit()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "continuum.json", rows)
    plot_continuum(rows, out / "continuum.png")
    return rows


COMMANDS = (
    Command(
        "block-orders",
        "mean-field ResNet: test accuracy under random orders of its blocks, as JSON",
        _orders_arguments,
        "odezoo.models.mean_field.mean_field_commands:block_orders_command",
        on_preset=True,
    ),
    Command(
        "continuum-limit",
        "mean-field ResNet: loss reached vs depth and width under both scalings (synthetic task)",
        _continuum_arguments,
        "odezoo.models.mean_field.mean_field_commands:continuum_command",
    ),
)
