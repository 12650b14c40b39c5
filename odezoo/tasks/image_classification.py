"""Image classification: float images in [0, 1] in, logits out; top-1 accuracy, and accuracy under
an L-inf PGD attack."""

from pathlib import Path

import numpy as np

from odezoo.data.images import (
    IMAGE_FORMATS,
    IMAGE_SUFFIXES,
    SAMPLE_FILE,
    get_dataset,
    image_dataset,
    preprocess_images,
)
from odezoo.errors import OdezooError, warn
from odezoo.tasks.base import Option, Task, data_options, limit_note, metric

# Default L-inf budgets of robust evaluation (docs/papers.md#yopo-baselines): (eps, step, steps);
# PGD-40 on MNIST-like data.
ATTACKS = {
    "cifar10": (8 / 255, 2 / 255, 20),
    "cifar100": (8 / 255, 2 / 255, 20),
    "fashion_mnist": (0.1, 0.01, 40),
}
# Largest allowed |artifact - Keras| on the logits, per export format / quantisation (set on a published
# classifier whose logits lie in [-12, 22]; measured differences are in export/MANIFEST.json).
TOLERANCES = {"saved_model": 1e-4, "tflite": 1e-4, "onnx": 1e-4, "float16": 0.1, "dynamic": 1.0, "int8": 2.0}
MIN_TOP1_AGREEMENT = 0.95  # share of sample inputs whose top-1 class matches Keras
INPUT_RANGE = (0.0, 1.0)
# Options of every evaluation on the zoo's image data sets (`odezoo.data.images`).
IMAGE_DATA_OPTIONS = data_options(
    "data set (default: the preset's)", "data split (default: test; 'sample' = the 1,000 bundled test images)"
)


class ImageClassification(Task):
    name = "image_classification"
    pipeline_tag = "image-classification"
    description = "float images in [0, 1] -> class logits"
    head_layer = "head"
    predict_options = (
        Option("sample", "how many bundled sample images when no file is given", int, minimum=1),
        Option("top_k", "classes shown per image", int, minimum=1),
    )
    eval_options = (
        *IMAGE_DATA_OPTIONS,
        Option("attack", "also report accuracy under an L-inf PGD attack", choices=("pgd",)),
        Option("eps", "attack radius (default: 8/255 for CIFAR, 0.1 for Fashion-MNIST)", float),
        Option("step", "attack step (default: 2/255 for CIFAR, 0.01 for Fashion-MNIST)", float),
        Option("steps", "attack steps (default: 20 for CIFAR, 40 for Fashion-MNIST)", int),
    )

    def check_inputs(self, model, x):
        return check_image_inputs(model, x)

    def predict(self, model, metadata, inputs, *, sample=None, top_k=3):
        """Top-k classes with probabilities for image files, or for bundled sample images (5 by default)."""
        class_names = metadata.get("class_names")
        if inputs and sample is not None:
            raise OdezooError(
                f"--sample picks bundled images when no file is given; drop it or the files. Received: "
                f"--sample {sample} and {len(inputs)} file(s)"
            )
        if inputs:
            inputs = image_files(inputs)
            images, labels = read_images(inputs, tuple(model.inputs[0].shape[1:])), [None] * len(inputs)
            names = list(inputs)
        else:
            sample = 5 if sample is None else sample
            images, labels = bundled_sample(sample)
            if sample > len(labels):
                raise OdezooError(
                    f"--sample {sample}: odezoo bundles {len(labels)} sample images; ask for fewer."
                )
            names = [f"sample[{i}]" for i in range(len(labels))]
        logits = model.predict(images, verbose=0)
        if top_k > (classes := logits.shape[-1]):
            warn(f"--top-k {top_k} is more than the {classes} classes: all {classes} are shown.")
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        results = []
        for name, label, p in zip(names, labels, probs):
            entry = {
                "input": name,
                "top": [
                    {"class": _class(class_names, i), "probability": round(float(p[i]), 4)}
                    for i in np.argsort(-p)[:top_k]
                ],
            }
            if label is not None:
                entry["label"] = _class(class_names, int(label))
            results.append(entry)
        return results

    def evaluate(
        self, model, metadata, *, dataset=None, split="test", limit=0, batch_size=256, data_dir=None,
        attack=None, eps=None, step=None, steps=None,
    ):  # fmt: skip
        dataset = dataset or metadata.get("dataset")
        if not dataset:
            raise OdezooError(f"{model.name} does not record its data set; pass --dataset.")
        if attack is None and (eps, step, steps) != (None, None, None):
            raise OdezooError("--eps, --step and --steps set an attack; add --attack pgd.")
        common = dict(split=split, limit=limit, batch_size=batch_size, data_dir=data_dir)
        if attack:
            return evaluate_robust(model, dataset, eps=eps, step=step, steps=steps, **common)
        return evaluate(model, dataset, **common)

    def headline(self, metadata):
        accuracy = metric(metadata, "accuracy", "test")
        if accuracy is None:
            return "—"
        robust = metric(metadata, "robust_accuracy")
        attacked = f", {robust['value']:.2%} under {robust['attack'].split(',')[0]}" if robust else ""
        return f"{accuracy['value']:.2%} test accuracy{attacked}"

    def sample_inputs(self, model, metadata, count=64):
        """Bundled Fashion-MNIST sample images when they fit the model, else uniform noise."""
        shape = tuple(model.inputs[0].shape[1:])
        images, _ = bundled_sample()
        if images.shape[1:] == shape:
            return images[:: len(images) // count][:count]
        return super().sample_inputs(model, metadata, count)

    def agreement(self, expected, actual, fmt):
        diff = float(np.max(np.abs(actual - expected)))
        tolerance = TOLERANCES[fmt]
        top1 = float(np.mean(actual.argmax(-1) == expected.argmax(-1)))
        report = {"max_abs_diff": diff, "tolerance": tolerance, "top1_agreement": top1}
        if diff <= tolerance and top1 >= MIN_TOP1_AGREEMENT:
            return report, None
        return report, (
            f"differs from Keras by {diff:.3g} (tolerance {tolerance:g}) and agrees on the top-1 class for "
            f"{top1:.0%} of the sample inputs (needed: {MIN_TOP1_AGREEMENT:.0%})"
        )

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """`agreement` with the quantisation's tolerance (`TOLERANCES`): top-1 agreement, max |difference|."""
        fields, problem = self.agreement(expected, actual, quantize)
        return {"measure": "top1_agreement", **fields}, problem

    def golden(self, model, stored):
        images, _ = bundled_sample(len(stored["logits"]))
        return model.predict(images, verbose=0), stored["logits"]

    def card_quotes(self, metadata):
        return [f"{metric(metadata, 'accuracy', 'test')['value']:.2%}", *super().card_quotes(metadata)]

    def spot_checks(self, model, metadata):
        """Accuracy on the 1,000 bundled test images within 3 points of the card's full-test figure; for
        robust presets, the card's attack on 200 of them within 10 points (binomial sd <= 3.5 points)."""
        from odezoo.adversarial import robust_evaluate  # deferred: start-up

        full = metric(metadata, "accuracy", "test")["value"]
        sample = evaluate(model, metadata["dataset"], split="sample")["accuracy"]
        checks = [(f"sample accuracy {sample:.2%} vs card {full:.2%}", abs(sample - full) < 0.03)]
        robust = metric(metadata, "robust_accuracy")
        if robust:
            eps, step, steps = ATTACKS[robust["dataset"]]
            same = robust["attack"].startswith(f"PGD-{steps}, L-inf eps={eps:g}, step={step:g}")
            checks.append((f"card attack {robust['attack']!r} is the data set's", same))
            value = robust_evaluate(model, bundled_sample(200), eps=eps, step=step, steps=steps)
            value, card = value["robust_accuracy"], robust["value"]
            checks.append((f"robust {value:.2%} vs card {card:.2%}", abs(value - card) < 0.1))
        return checks


def check_image_inputs(model, x, *, overshoot=1e-3):
    """Returns `x` as an array if it holds float images in [0, 1] of `model`'s input shape (a `None`
    dimension takes any size), else raises `OdezooError` saying what fits. Values may lie up to
    `overshoot` outside [0, 1] (degraded images, e.g. with unclipped noise, do)."""
    expected = tuple(model.inputs[0].shape[1:])
    names = ("height", "width", "channels") if len(expected) == 3 else ("size",) * len(expected)
    want = f"(batch, {', '.join(name if d is None else str(d) for name, d in zip(names, expected))})"
    arr = _as_array(model, x)
    if arr.dtype.kind != "f":
        fix = " Convert with `x.astype('float32') / 255`." if arr.dtype == np.uint8 else ""
        raise OdezooError(
            f"{model.name} expects float inputs of shape {want} with values in [0, 1]; "
            f"received dtype {arr.dtype}.{fix}"
        )
    if arr.ndim == len(expected) + 1 and _fits(arr.shape[1:], expected):
        if not len(arr):
            raise OdezooError(f"{model.name} received an empty batch (0 images of shape {want}).")
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise OdezooError(
                f"{model.name} received {bad} NaN/inf values in {len(arr)} images; remove or repair them."
            )
        (low, high) = INPUT_RANGE
        outside = np.any((arr < low - overshoot) | (arr > high + overshoot), axis=tuple(range(1, arr.ndim)))
        if outside.any():  # the whole input: a few 8-bit images among many in [0, 1] are found too
            lo, hi = float(arr.min()), float(arr.max())
            allowed = f" (degraded images may overshoot it by {overshoot:g})" if overshoot >= 0.01 else ""
            fix = " Divide 8-bit images by 255." if hi > 2 * high + overshoot else ""
            count, first = int(outside.sum()), int(np.argmax(outside))
            where = f" ({count} of {len(arr)} images, the first at index {first})" if count < len(arr) else ""
            raise OdezooError(
                f"{model.name} expects values in [{low:g}, {high:g}]{allowed}; received values in "
                f"[{lo:g}, {hi:g}]{where}.{fix}"
            )
        return arr
    fix = _axis_fix(arr.shape, expected)
    raise OdezooError(f"{model.name} expects inputs of shape {want}; received {tuple(arr.shape)}.{fix}")


def _as_array(model, x):
    """`x` as one array; a list of images of different sizes is refused (a batch has one size)."""
    if isinstance(x, list | tuple) and len({np.shape(image) for image in x}) > 1:
        sizes = ", ".join(str(np.shape(image)) for image in x[:4]) + (", ..." if len(x) > 4 else "")
        raise OdezooError(
            f"{model.name} received a list of {len(x)} images of different shapes ({sizes}); a batch holds "
            "images of one shape: pass them one at a time (image[None]), or in groups of one shape."
        )
    return np.asarray(x)


def _axis_fix(shape, expected):
    """What to do to an array of `shape` for a model taking `(batch, *expected)` images (height, width,
    channels; `None`: any size): the axis to add or move, else the size that differs."""
    channels, spatial = expected[-1], expected[:-1]
    if _fits(shape, expected):
        return " Add a batch axis: x[None]."
    if len(shape) == len(expected) and shape[-1] in (1, 3, 4) and _fits(shape[:-1], spatial):
        return f" One image of {shape[-1]} channels: add a batch axis (x[None]); the model takes {channels}."
    if len(shape) == len(expected) and _fits(shape[1:], spatial) and channels == 1:
        return " Add a channel axis: x[..., None]."
    if len(shape) == len(spatial) and _fits(shape, spatial):
        if channels == 1:
            return " Add a batch and a channel axis: x[None, ..., None]."
        return f" One grey image; the model takes {channels} channels: np.repeat(x[None, ..., None], 3, -1)."
    if len(shape) == len(expected) + 1 and shape[1] == channels != shape[-1] and _fits(shape[2:], spatial):
        return (
            " The channels come first (batch, channels, height, width); the model takes them last: "
            "np.moveaxis(x, 1, -1)."
        )
    if len(shape) == len(expected) and shape[0] == channels != shape[-1] and _fits(shape[1:], spatial):
        return " The channels come first (channels, height, width): take np.moveaxis(x, 0, -1)[None]."
    if len(shape) == len(expected) + 1 and _fits(shape[1:-1], spatial):
        return f" The images have {shape[-1]} channels; the model takes {channels}."
    if len(shape) == len(expected) + 1:
        return " Resize the inputs or load a preset made for this shape."
    return f" The model takes 4-D arrays (batch, height, width, channels); received {len(shape)}-D."


def _fits(shape, expected):
    """Whether `shape` matches `expected`, where `None` in `expected` matches any size."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def check_num_classes(num_classes):
    """Raises unless `num_classes` is a positive int (or `None`: the model returns its features)."""
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise OdezooError(
            "`num_classes` must be a positive integer (or None for the pooled features). "
            f"Received: num_classes={num_classes!r}"
        )


def _class(class_names, index):
    return class_names[index] if class_names else int(index)


def bundled_sample(count=None):
    """The first `count` of the 1,000 bundled Fashion-MNIST test images (float32 in [0, 1]) and labels."""

    with np.load(SAMPLE_FILE) as f:
        return f["images"][:count].astype("float32") / 255.0, f["labels"][:count]


def image_files(paths):
    """`paths` with each folder replaced by its image files (`IMAGE_SUFFIXES`), sorted by
    name; a folder without any is refused. Other paths stay as given (read_image says what is wrong)."""
    files = []
    for path in paths:
        if not Path(path).is_dir():
            files.append(path)
            continue
        found = sorted(
            str(f) for f in Path(path).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
        )
        if not found:
            raise OdezooError(f"The folder {path} holds no image files ({IMAGE_FORMATS}).")
        files += found
    return files


def read_images(paths, shape):
    """Decodes image files (`IMAGE_FORMATS`) to float images in [0, 1] of `shape` (resized):
    `odezoo.preprocess_images`."""
    return preprocess_images(list(paths), shape)


def evaluate(model, dataset, *, split="test", limit=0, batch_size=256, data_dir=None):
    """Top-1 accuracy and mean cross-entropy of `model` (logits) on a data split.

    Returns:
        `{"dataset", "split", "num_examples", "accuracy", "loss"}`.
    """
    import keras  # deferred: heavy; the CLI reads task modules before TensorFlow starts

    _check_fits(model, dataset)
    ds, count = image_dataset(dataset, split, batch_size=batch_size, limit=limit, data_dir=data_dir)
    loss = keras.metrics.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    from odezoo._progress import progress  # deferred: the CLI reads task modules before TensorFlow starts

    batches = -(-count // batch_size)
    for images, labels in progress(ds, total=batches, desc=f"{dataset} {split}", unit="batches"):
        logits = model(images, training=False)
        loss.update_state(labels, logits)
        accuracy.update_state(labels, logits)
    return {
        "dataset": dataset,
        "split": split,
        "num_examples": count,
        **limit_note(limit, count),
        "accuracy": float(accuracy.result()),
        "loss": float(loss.result()),
    }


def evaluate_robust(
    model, dataset, *, split="test", limit=0, batch_size=256, data_dir=None, eps=None, step=None, steps=None
):
    """`evaluate`'s result (`accuracy`, `loss`, ...) with `robust_accuracy` under a PGD `attack`; unset
    budgets default to `ATTACKS[dataset]`."""
    from odezoo.adversarial import robust_evaluate  # deferred: start-up

    clean = evaluate(model, dataset, split=split, limit=limit, batch_size=batch_size, data_dir=data_dir)
    default = ATTACKS.get(dataset, (8 / 255, 2 / 255, 20))
    eps, step, steps = (d if v is None else v for v, d in zip((eps, step, steps), default))
    ds, count = image_dataset(dataset, split, batch_size=batch_size, limit=limit, data_dir=data_dir)
    from odezoo._progress import progress  # deferred: the CLI reads task modules before TensorFlow starts

    batches = progress(
        ds, total=-(-count // batch_size), desc=f"PGD-{steps} on {dataset} {split}", unit="batches"
    )
    attacked = robust_evaluate(model, batches, eps=eps, step=step, steps=steps)
    return {**clean, "robust_accuracy": attacked["robust_accuracy"], "attack": attacked["attack"]}


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
