"""The interleaved throughput measurement the image-network benches share: every model in one process,
compiled first, then timed in an order that rotates every repeat (no model always goes first), so
machine noise hits them alike; medians of images/s."""

import statistics
import time

import keras
import numpy as np


def set_threads(threads):
    """TensorFlow's intra- and inter-op threads (0: TensorFlow's default)."""
    if threads and keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def interleaved_throughput(models, shape, *, batch_size, steps, repeats, num_classes=10):
    """`(train, inference)`: median images/s per model name of `models` (compiled `keras.Model`s), each
    timed `repeats` times on `batch_size * steps` random images of `shape` (one epoch of `fit`, then
    `predict`)."""
    rng = np.random.default_rng(0)
    n = batch_size * steps
    x = rng.uniform(0, 1, (n, *shape)).astype("float32")
    y = rng.integers(0, num_classes, n)
    for model in models.values():  # compile the train and predict functions
        model.fit(x[: 2 * batch_size], y[: 2 * batch_size], batch_size=batch_size, verbose=0)
        model.predict(x[: 2 * batch_size], batch_size=batch_size, verbose=0)
    names = list(models)
    train, infer = {name: [] for name in names}, {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            models[name].fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
            train[name].append(n / (time.perf_counter() - start))
            start = time.perf_counter()
            models[name].predict(x, batch_size=batch_size, verbose=0)
            infer[name].append(n / (time.perf_counter() - start))
    median = lambda d: {k: statistics.median(v) for k, v in d.items()}  # noqa: E731
    return median(train), median(infer)
