"""Evaluation of classifiers on the zoo's data sets: accuracy, and accuracy under PGD attack."""

import keras

from odezoo.data.images import get_dataset, image_dataset
from odezoo.errors import OdezooError

# Default L-inf budgets of robust evaluation (models.md 5.2): (eps, step, steps); PGD-40 on MNIST-like data.
ATTACKS = {
    "cifar10": (8 / 255, 2 / 255, 20),
    "cifar100": (8 / 255, 2 / 255, 20),
    "fashion_mnist": (0.1, 0.01, 40),
}


def evaluate(model, dataset, *, split="test", limit=0, batch_size=256, data_dir=None):
    """Top-1 accuracy and mean cross-entropy of `model` (logits) on a data split.

    Returns:
        `{"dataset", "split", "num_examples", "accuracy", "loss"}`.
    """
    _check_fits(model, dataset)
    ds, count = image_dataset(dataset, split, batch_size=batch_size, limit=limit, data_dir=data_dir)
    loss = keras.metrics.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    for images, labels in ds:
        logits = model(images, training=False)
        loss.update_state(labels, logits)
        accuracy.update_state(labels, logits)
    return {
        "dataset": dataset,
        "split": split,
        "num_examples": count,
        "accuracy": float(accuracy.result()),
        "loss": float(loss.result()),
    }


def evaluate_robust(
    model, dataset, *, split="test", limit=0, batch_size=256, data_dir=None, eps=None, step=None, steps=None
):
    """Clean and PGD accuracy on a data split; unset budgets default to `ATTACKS[dataset]`."""
    from odezoo.adversarial import robust_evaluate

    _check_fits(model, dataset)
    default = ATTACKS.get(dataset, (8 / 255, 2 / 255, 20))
    eps, step, steps = (d if v is None else v for v, d in zip((eps, step, steps), default))
    ds, _ = image_dataset(dataset, split, batch_size=batch_size, limit=limit, data_dir=data_dir)
    return {"dataset": dataset, "split": split, **robust_evaluate(model, ds, eps=eps, step=step, steps=steps)}


def _check_fits(model, dataset):
    spec = get_dataset(dataset)
    expected = tuple(model.inputs[0].shape[1:])
    if expected != spec.image_shape:
        raise OdezooError(
            f"{model.name} takes images of shape {expected} but {dataset} has {spec.image_shape}; "
            "evaluate it on the data set it was made for."
        )
    if model.outputs[0].shape[-1] != spec.num_classes:
        raise OdezooError(
            f"{model.name} predicts {model.outputs[0].shape[-1]} classes but {dataset} has "
            f"{spec.num_classes}."
        )
