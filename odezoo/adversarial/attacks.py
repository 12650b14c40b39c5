"""Adversarial attacks and robust evaluation (TensorFlow-specific): PGD-k and FGSM under L-inf.

Models take float images in [0, 1] with normalisation inside them, as every odezoo classifier.
"""

import numpy as np

from odezoo.errors import OdezooError, check_integer, check_number


def check_budget(eps, step=None, steps=None):
    """Raises unless `eps` and `step` are numbers with `0 < eps <= 1` and `0 < step <= eps`, and `steps`
    an integer >= 1 (each when given)."""
    eps = check_number("eps", eps)
    step = None if step is None else check_number("step", step)
    if steps is not None:
        check_integer("steps", steps, 1)
    if not 0 < eps <= 1:
        raise OdezooError(
            f"eps must be in (0, 1] (an L-inf radius for images in [0, 1], e.g. 8/255). Received: eps={eps}"
        )
    if step is not None and not 0 < step <= eps:
        raise OdezooError(f"The step size must be in (0, eps] = (0, {eps:g}]. Received: step={step}")


def check_in_unit_box(x):
    """Raises unless the images lie in [0, 1]: attacks clip to that box."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise OdezooError(
            f"Attacks work on images in [0, 1] and the model must normalise inside (odezoo models do); "
            f"received values in [{lo:g}, {hi:g}]. Pass raw images scaled to [0, 1] and move any "
            "mean/std normalisation into the model (e.g. a Rescaling layer)."
        )


def check_examples(model, images, labels):
    """`(images, labels)` as NumPy arrays if they are a labelled batch `model` can be attacked or trained
    on: float images in [0, 1] of its input shape (its own `check_inputs` where it has one, as odezoo
    models do) and one integer class id `0..classes-1` per image; else raises `OdezooError` saying
    what fits (one-hot labels, 1-based ids and 8-bit images included)."""
    images, labels = np.asarray(images), np.asarray(labels)
    if hasattr(model, "check_inputs"):
        images = model.check_inputs(images)
    else:
        expected = tuple(model.inputs[0].shape[1:])
        fits = images.ndim == len(expected) + 1 and all(
            e is None or s == e for s, e in zip(images.shape[1:], expected)
        )
        if images.dtype.kind != "f" or not fits:
            raise OdezooError(
                f"{model.name} takes float images of shape (batch, {', '.join(map(str, expected))}) in "
                f"[0, 1]; received {images.dtype} of shape {images.shape}."
            )
    classes = int(model.outputs[0].shape[-1])
    if labels.ndim == 2 and labels.shape[-1] == classes and labels.shape[0] == len(images):
        raise OdezooError(
            f"The labels are one-hot (shape {labels.shape}); {model.name} takes one class id per image, "
            "shape (batch,): pass labels.argmax(-1)."
        )
    whole = labels.dtype.kind in "iu" or (labels.dtype.kind == "f" and np.all(labels == np.round(labels)))
    if labels.ndim != 1 or not whole:
        raise OdezooError(
            f"The labels must be integer class ids of shape (batch,); received {labels.dtype} of shape "
            f"{labels.shape}."
        )
    if len(labels) != len(images):
        raise OdezooError(f"Received {len(images)} images but {len(labels)} labels: give one per image.")
    if not len(labels):
        raise OdezooError("Received no examples (0 images); give at least one.")
    check_in_unit_box(images)
    low, high = labels.min(), labels.max()
    if low < 0 or high >= classes:
        shifted = " (1-based? subtract 1)" if low >= 1 and high == classes else ""
        raise OdezooError(
            f"The labels hold class ids {low:g}..{high:g} but {model.name} has {classes} classes, ids "
            f"0..{classes - 1}{shifted}."
        )
    return images, labels.astype("int64")


def cross_entropy(y, logits):
    import tensorflow as tf

    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def project(x, eta, eps):
    """`eta` clipped to the L-inf ball of radius `eps` and so that `x + eta` stays in [0, 1]."""
    import tensorflow as tf

    eta = tf.clip_by_value(eta, -eps, eps)
    return tf.clip_by_value(x + eta, 0.0, 1.0) - x


def pgd(model, x, y, *, eps, step, steps, random_start=True, seed=None):
    """PGD-k under L-inf (Madry et al.): `eta <- P(eta + step sign grad_x CE)`, run in inference mode
    (batch norm uses its moving statistics). Returns the adversarial images `x + eta`."""
    import tensorflow as tf

    check_budget(eps, step, steps)
    if isinstance(
        x, np.ndarray | list
    ):  # a user's batch (the trainer and robust_evaluate pass checked tensors)
        x, y = check_examples(model, x, y)
    x = tf.convert_to_tensor(x, tf.float32)
    if random_start and seed is not None:  # reproducible, and a traced attack needs no retrace per seed
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
        eta = tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps)
    elif random_start:
        eta = tf.random.uniform(tf.shape(x), -eps, eps)
    else:
        eta = tf.zeros_like(x)
    eta = project(x, eta, eps)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(eta)
            loss = cross_entropy(y, model(x + eta, training=False))
        eta = project(x, eta + step * tf.sign(tape.gradient(loss, eta)), eps)
    return x + eta


def fgsm(model, x, y, *, eps):
    """One sign step of size `eps` from `x` (no random start)."""
    return pgd(model, x, y, eps=eps, step=eps, steps=1, random_start=False)


def robust_evaluate(model, data, *, eps, step, steps, batch_size=256, seed=0):
    """Clean and PGD-`steps` accuracy.

    `data` is `(images, labels)` arrays (images in [0, 1], integer class ids), a tuple, or an
    iterable of such batches (a `tf.data.Dataset`); every batch is checked (`check_examples`). The
    attack runs in inference mode from a random start, batch `i` seeded by `seed + i`, as one compiled
    TensorFlow function.
    """
    import tensorflow as tf

    check_budget(eps, step, steps)

    @tf.function(reduce_retracing=True)
    def attack(xb, yb, s):
        return model(pgd(model, xb, yb, eps=eps, step=step, steps=steps, seed=s), training=False)

    batch_size = check_integer("batch_size", batch_size, 1)
    if isinstance(data, tuple) and len(data) == 2:
        x, y = check_examples(model, *data)
        data = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    elif isinstance(data, list) and len(data) == 2 and all(isinstance(d, np.ndarray) for d in data):
        raise OdezooError(
            "robust_evaluate takes data=(images, labels), a tuple, or an iterable of (images, labels) "
            "batches; received a list of two arrays, which reads as two batches: pass tuple(data)."
        )
    clean = robust = count = 0
    for index, batch in enumerate(data):
        try:
            xb, yb = batch
        except (TypeError, ValueError):
            raise OdezooError(
                "robust_evaluate takes data=(images, labels), a tuple, or an iterable of (images, labels) "
                f"batches; item {index} of the {type(data).__name__} given is not such a pair."
            ) from None
        xb, yb = check_examples(model, xb, yb)
        clean += int(np.sum(np.argmax(model(xb, training=False), -1) == yb))
        logits = attack(tf.constant(xb, tf.float32), tf.constant(yb), tf.constant(seed + index, tf.int64))
        robust += int(np.sum(np.argmax(logits, -1) == yb))
        count += len(yb)
    if not count:
        raise OdezooError("robust_evaluate received no examples (an empty split or iterable); give some.")
    return {
        "clean_accuracy": clean / count,
        "robust_accuracy": robust / count,
        "attack": f"PGD-{steps}, L-inf eps={eps:g}, step={step:g}, random start, inference mode",
        "num_examples": count,
    }
