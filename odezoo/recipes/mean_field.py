"""Mean-field ResNet recipe: plain or block-reordering training, and the standard-ResNet baseline
(`scaling="standard"`, the same code without 1/(L·M)).

The paper's training scheme is NOT FOUND (docs/papers.md#mean-field-paper); every choice here is ours. Adam
with cosine decay over 8 epochs, no weight decay, batch 128, the zoo's Fashion-MNIST augmentation (pad 2 +
random crop + flip). Learning rates, one per scaling, from 4-epoch runs on the first 50,000 training images
scored on the last 10,000 (`--set validation=10000`): mean-field 0.002 / 0.006 / 0.02 / 0.06 gave 75.5 /
81.8 / 87.4 / 85.2 %, standard 0.0006 / 0.002 / 0.006 gave 84.5 / 89.1 / 9.6 % (diverged); hence 0.02 and
0.002. Under the 1/(L·M) factor each particle's weights must move further to change the output, so its best
rate is larger.

Block reordering (`shuffle_blocks=True`) draws a fresh random permutation of the blocks at every
training step: per step rather than per epoch so that each block is trained at every position about
equally often within an epoch, which is what makes the ensemble (first-order) term the thing being
fitted. After training, the recipe measures test accuracy in the trained order and under `orders`
random block orders (`metadata.json` → `block_orders`). With `validation=N` the last N training
images are held out and the run reports its accuracy on them only.
"""

from dataclasses import dataclass, replace

import keras

from odezoo.data.images import image_dataset
from odezoo.errors import OdezooError
from odezoo.models.mean_field.mean_field import VARIANTS, MeanFieldResNet
from odezoo.models.mean_field.mean_field_eval import order_invariance
from odezoo.models.mean_field.mean_field_layers import SCALINGS
from odezoo.recipes._common import (
    ImageRunConfig,
    check_positive,
    finish_run,
    float32_model,
    mixed_precision,
    start_image_run,
    test_metric,
    train_command,
    training_dtype,
)
from odezoo.tasks.image_classification import evaluate
from odezoo.training import fit_resumable, learning_rate_schedule


@dataclass(frozen=True, kw_only=True)
class Config(ImageRunConfig):
    """Every knob of the recipe; `odezoo train RECIPE --set key=value` changes one (`limit`: examples
    per split; `dtype`: `mixed_float16` or `mixed_bfloat16` trains in mixed precision)."""

    dataset: str = "fashion_mnist"
    num_blocks: int = 8  # L
    width: int = 64  # M
    channels: int = 32
    variant: str = "conv"
    scaling: str = "mean_field"
    shuffle_blocks: bool = False
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 0.02  # mean-field scaling's; the standard scaling's is 0.002 (see above)
    orders: int = 10  # random block orders evaluated after training
    validation: int = 0  # hold out the last N training images and report on them, not on the test split

    def preset_name(self):
        """`mean_field_resnet8_fashion_mnist`, `mean_field_resnet8_reordered_fashion_mnist`,
        `standard_resnet8_fashion_mnist`; `_w<M>` when M is not 64, `_dense`, `_seed<k>` when
        k > 0, `_holdout` for a validation run."""
        if self.preset:
            return self.preset
        name = "mean_field_resnet" if self.scaling == "mean_field" else "standard_resnet"
        name += str(self.num_blocks) + ("" if self.width == 64 else f"_w{self.width}")
        name += "_dense" if self.variant == "dense" else ""
        name += "_reordered" if self.shuffle_blocks else ""
        name += f"_{self.dataset}" + (f"_seed{self.seed}" if self.seed else "")
        return name + ("_holdout" if self.validation else "")

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        for name, value, allowed in (
            ("scaling", self.scaling, SCALINGS),
            ("variant", self.variant, VARIANTS),
        ):
            if value not in allowed:
                raise OdezooError(f"`{name}` must be one of {allowed}. Received: {name}={value!r}")
        check_positive(self, "num_blocks", "width", "channels", "epochs", "batch_size")
        check_positive(self, "limit", "orders", "learning_rate", "validation", minimum=0)


ORDERS_COMMAND = "odezoo block-orders"  # the command that repeats the block-order measurement
MEAN_FIELD = Config()
REORDERED = replace(MEAN_FIELD, shuffle_blocks=True)
STANDARD = replace(MEAN_FIELD, scaling="standard", learning_rate=0.002)
CONFIGS = (MEAN_FIELD, REORDERED, STANDARD)


def train(config, workdir, *, callbacks=()):
    """Trains, evaluates on the test split (also under random block orders) and writes a preset.

    Returns:
        `{"test_accuracy", "test_loss", "random_order_accuracy_mean", "random_order_accuracy_min",
        "preset_dir"}`.
    """
    run = start_image_run(config, workdir, holdout=config.validation)
    workdir, spec, train_ds, steps_per_epoch, strategy = run
    with strategy.scope():
        model = MeanFieldResNet(
            num_blocks=config.num_blocks,
            width=config.width,
            channels=config.channels,
            num_classes=spec.num_classes,
            image_shape=spec.image_shape,
            variant=config.variant,
            scaling=config.scaling,
            shuffle_blocks=config.shuffle_blocks,
            mean=spec.mean,
            std=spec.std,
            name=config.preset_name(),
            dtype=training_dtype(config),
        )
        schedule = learning_rate_schedule(
            config.learning_rate, epochs=config.epochs, steps_per_epoch=steps_per_epoch
        )
        model.compile(
            optimizer=mixed_precision(model, keras.optimizers.Adam(schedule), config),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    checkpoint = fit_resumable(
        model,
        train_ds,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        directory=workdir / "checkpoints",
        strategy=strategy,
        callbacks=callbacks,
    )
    preset = config.preset_name()
    recipe, _ = train_command(config)
    model = float32_model(model, config)  # what the preset holds
    if config.validation:
        metrics, orders = _validation_metrics(model, config, recipe), None
        summary = {f"validation_{m['metric']}": m["value"] for m in metrics}
    else:
        metrics, summary, orders = _test_metrics(model, config, preset)
    scaling = "1/(L·M) mean-field" if config.scaling == "mean_field" else "standard (unscaled)"
    return finish_run(
        workdir,
        model,
        config,
        summary=summary,
        history=checkpoint.history,
        metadata={
            "description": f"{config.num_blocks}-block {scaling} ResNet (M = {config.width}), "
            f"{'block-reordering' if config.shuffle_blocks else 'plain'} training on {config.dataset} "
            f"by recipe `{recipe}`.",
            "dataset": config.dataset,
            "class_names": list(spec.class_names),
            "metrics": metrics,
            **({"block_orders": orders} if orders else {}),
        },
    )


def _test_metrics(model, config, preset):
    """Test accuracy and loss (`odezoo eval`), and accuracy under `config.orders` random block
    orders with the command that repeats it."""
    data_dir = config.data_dir or None
    result = evaluate(model, config.dataset, split="test", limit=config.limit, data_dir=data_dir)
    command = f"odezoo eval {preset} --dataset {config.dataset}"
    metrics = [test_metric(config, result, metric, command) for metric in ("accuracy", "loss")]
    summary = {"test_accuracy": result["accuracy"], "test_loss": result["loss"]}
    if not config.orders:
        return metrics, summary, None
    orders = order_invariance(
        model, config.dataset, orders=config.orders, seed=0, limit=config.limit, data_dir=data_dir
    )
    for key in ("random_order_mean", "random_order_min", "random_order_std"):
        summary[f"accuracy_{key}"] = orders[key]
    return metrics, summary, {**orders, "command": f"{ORDERS_COMMAND} {preset} --orders {config.orders}"}


def _validation_metrics(model, config, recipe):
    """Accuracy and loss on the `config.validation` training images the run held out."""
    ds, count = image_dataset(
        config.dataset, "train", batch_size=256, holdout=config.validation, heldout=True,
        data_dir=config.data_dir or None,
    )  # fmt: skip
    if not model.compiled:  # the float32 copy of a mixed-precision run
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    loss, accuracy = model.evaluate(ds, verbose=0)
    where = f"the last {count} training images, held out (`{recipe}` with validation={config.validation})"
    return [
        {"dataset": config.dataset, "split": "validation", "metric": metric, "value": float(value),
         "num_examples": count, "command": where}
        for metric, value in (("accuracy", accuracy), ("loss", loss))
    ]  # fmt: skip
