"""Adversarial attacks and robust evaluation (TensorFlow-specific): PGD-k and FGSM under L-inf.

Models take float images in [0, 1] with normalisation inside them, as every odezoo classifier.
"""

import numpy as np

from odezoo.errors import OdezooError


def check_budget(eps, step=None, steps=None):
    """Raises unless `0 < eps <= 1`, `0 < step <= eps` and `steps >= 1` (when given)."""
    if not 0 < eps <= 1:
        raise OdezooError(
            f"eps must be in (0, 1] (an L-inf radius for images in [0, 1], e.g. 8/255). Received: eps={eps}"
        )
    if step is not None and not 0 < step <= eps:
        raise OdezooError(f"The step size must be in (0, eps] = (0, {eps:g}]. Received: step={step}")
    if steps is not None and steps < 1:
        raise OdezooError(f"steps must be >= 1. Received: steps={steps}")


def check_in_unit_box(x):
    """Raises unless the images lie in [0, 1]: attacks clip to that box."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise OdezooError(
            f"Attacks work on images in [0, 1] and the model must normalise inside (odezoo models do); "
            f"received values in [{lo:g}, {hi:g}]. Pass raw images scaled to [0, 1] and move any "
            "mean/std normalisation into the model (e.g. a Rescaling layer)."
        )


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

    `data` is `(images, labels)` arrays (images in [0, 1]) or an iterable of such batches (a
    `tf.data.Dataset`). The attack runs in inference mode from a random start, batch `i` seeded by
    `seed + i`, as one compiled TensorFlow function.
    """
    import tensorflow as tf

    check_budget(eps, step, steps)

    @tf.function(reduce_retracing=True)
    def attack(xb, yb, s):
        return model(pgd(model, xb, yb, eps=eps, step=step, steps=steps, seed=s), training=False)

    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
        data = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    clean = robust = count = 0
    for index, (xb, yb) in enumerate(data):
        xb, yb = np.asarray(xb), np.asarray(yb)
        check_in_unit_box(xb)
        clean += int(np.sum(np.argmax(model(xb, training=False), -1) == yb))
        logits = attack(tf.constant(xb, tf.float32), tf.constant(yb), tf.constant(seed + index, tf.int64))
        robust += int(np.sum(np.argmax(logits, -1) == yb))
        count += len(yb)
    return {
        "clean_accuracy": clean / count,
        "robust_accuracy": robust / count,
        "attack": f"PGD-{steps}, L-inf eps={eps:g}, step={step:g}, random start, inference mode",
        "num_examples": count,
    }
