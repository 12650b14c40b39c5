"""Image-classification recipe for LM-ResNet, its plain-ResNet baseline (`scheme="euler"`) and the
residual network of any other scheme (`--set scheme=rk4`, `--set stage_sharing=false`; the schemes in
`odezoo/models/_schemes.py`).

SGD with momentum, decoupled weight decay (not on batch-norm, biases or the LM
scalars `k`), cosine or step learning-rate decay, sparse cross-entropy on logits.
Runs under a `tf.distribute` strategy; checkpoints every epoch and resumes.

CIFAR schedule: the paper's is NOT FOUND (docs/papers.md#lm-resnet-training). The defaults are the usual
pre-activation ResNet recipe: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128,
160 epochs, learning rate / 10 at 50 % and 75 %. Fashion-MNIST: 20 epochs with cosine
decay, sized for a 2-core CPU (about 35 min per model).
"""

from dataclasses import dataclass, replace

import keras

from odezoo.data.images import get_dataset
from odezoo.errors import OdezooError
from odezoo.models._schemes import SCHEMES
from odezoo.models.lm_resnet import LMResNet
from odezoo.models.lm_resnet.lm_resnet import check_block_layout
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
    depth: int = 20
    scheme: str = "lm"
    stage_sharing: bool = True
    block_type: str = "basic"
    width: int = 16
    death_rate: float = 0.0
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"  # "cosine" or "step" (/10 at 50 % and 75 %)
    label_smoothing: float = 0.0

    def preset_name(self):
        """`<scheme>_resnet<depth>_<dataset>` (no prefix for Euler), `_stacked` when a step's stages are
        consecutive blocks, `_sd` with stochastic depth."""
        if self.preset:
            return self.preset
        prefix = "" if self.scheme == "euler" else f"{self.scheme}_"
        stacked = "_stacked" if not self.stage_sharing and SCHEMES[self.scheme].evaluations > 1 else ""
        suffix = "_sd" if self.death_rate else ""
        return f"{prefix}resnet{self.depth}_{self.dataset}{stacked}{suffix}"

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        if self.lr_schedule not in ("cosine", "step"):
            raise OdezooError(
                f"`lr_schedule` must be 'cosine' or 'step'. Received: lr_schedule={self.lr_schedule!r}"
            )
        check_positive(self, "depth", "epochs", "batch_size", "width")
        check_positive(self, "limit", "weight_decay", minimum=0)
        get_dataset(self.dataset)
        check_block_layout(
            depth=self.depth,
            scheme=self.scheme,
            block_type=self.block_type,
            stage_sharing=self.stage_sharing,
            death_rate=self.death_rate,
        )

    def milestone_epochs(self):
        """The epochs at which the learning rate drops 10x: 50 % and 75 % of the run for `step`, else none."""
        return (self.epochs * 0.5, self.epochs * 0.75) if self.lr_schedule == "step" else ()


_ARCHITECTURES = {"lm": "LM-ResNet", "euler": "pre-activation ResNet"}
FASHION_MNIST = Config()
CIFAR10 = Config(
    dataset="cifar10", depth=56, epochs=160, weight_decay=1e-4, nesterov=False, lr_schedule="step"
)
CIFAR100 = replace(CIFAR10, dataset="cifar100")
RESNET20_FASHION_MNIST = replace(FASHION_MNIST, scheme="euler")  # LM-ResNet-20's baseline
# The scheme comparison's budget (MODEL_CARDS.md#numerical-schemes-compared): one epoch on the first
# 10,000 training images, every scheme at the parameters of ResNet-20; the presets of the schemes other
# than Euler and LM are its seed-0 runs.
SCHEME_COMPARISON = replace(FASHION_MNIST, epochs=1, limit=10_000)
SCHEME_PRESETS = tuple(
    replace(SCHEME_COMPARISON, scheme=scheme) for scheme in ("heun", "midpoint", "rk4", "backward_euler")
)
CONFIGS = (FASHION_MNIST, RESNET20_FASHION_MNIST, CIFAR10, CIFAR100, *SCHEME_PRESETS)


def train(config, workdir, *, callbacks=()):
    """Trains, evaluates on the test split and writes a preset folder.

    Writes `workdir/config.json`, `workdir/checkpoints/` (resumed if present),
    `workdir/metrics.json` and `workdir/<preset>/` (via `save_pretrained`).

    Returns:
        `{"test_accuracy": ..., "test_loss": ..., "preset_dir": ...}`.
    """
    workdir, spec, train_ds, steps_per_epoch, strategy = start_image_run(config, workdir)
    data_dir = config.data_dir or None
    with strategy.scope():
        model = LMResNet(
            depth=config.depth,
            num_classes=spec.num_classes,
            image_shape=spec.image_shape,
            scheme=config.scheme,
            stage_sharing=config.stage_sharing,
            block_type=config.block_type,
            width=config.width,
            death_rate=config.death_rate,
            mean=spec.mean,
            std=spec.std,
            name=config.preset_name(),
            dtype=training_dtype(config),
        )
        schedule = learning_rate_schedule(
            config.learning_rate,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            milestones=config.milestone_epochs(),
        )
        optimizer = keras.optimizers.SGD(
            schedule,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias", "^k$"])
        model.compile(
            optimizer=mixed_precision(model, optimizer, config),
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=config.label_smoothing
            )
            if config.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    if config.label_smoothing:
        train_ds = train_ds.map(lambda x, y: (x, _one_hot(y, spec.num_classes)))
    checkpoint = fit_resumable(
        model,
        train_ds,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        directory=workdir / "checkpoints",
        strategy=strategy,
        callbacks=callbacks,
    )
    model = float32_model(model, config)  # what the preset holds
    result = evaluate(model, config.dataset, split="test", limit=config.limit, data_dir=data_dir)
    command = f"odezoo eval {config.preset_name()} --dataset {config.dataset}"
    recipe, _ = train_command(config)
    return finish_run(
        workdir,
        model,
        config,
        summary={"test_accuracy": result["accuracy"], "test_loss": result["loss"]},
        history=checkpoint.history,
        metadata={
            "description": f"{config.depth}-layer {_architecture(config)} "
            f"trained on {config.dataset} by recipe `{recipe}`.",
            "dataset": config.dataset,
            "class_names": list(spec.class_names),
            "metrics": [test_metric(config, result, metric, command) for metric in ("accuracy", "loss")],
        },
    )


def _architecture(config):
    """What the recipe trains, for the preset's description."""
    if config.scheme in _ARCHITECTURES:
        return _ARCHITECTURES[config.scheme]
    stages = "shared" if config.stage_sharing else "stacked"
    return f"pre-activation ResNet with {SCHEMES[config.scheme].title} steps ({stages} stages)"


def _one_hot(labels, num_classes):
    import tensorflow as tf

    return tf.one_hot(labels, num_classes)
