"""The interleaved throughput measurement the image-network benches share: every model in one process,
compiled (or warmed up) first, then timed in an order that rotates every repeat (no model always goes
first), so machine noise hits them alike; medians of images/s."""

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


def random_data(shape, n, num_classes=10):
    """`(x, y)`: `n` images of `shape`, uniform in [0, 1) (float32), and their labels; seed 0."""
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (n, *shape)).astype("float32"), rng.integers(0, num_classes, n)


def keras_runs(model, x, y, batch_size):
    """`(train, infer)` callables of the compiled `model` on `x`, `y`: one epoch of `fit`, one `predict`;
    both functions are compiled here (on two batches)."""
    model.fit(x[: 2 * batch_size], y[: 2 * batch_size], batch_size=batch_size, verbose=0)
    model.predict(x[: 2 * batch_size], batch_size=batch_size, verbose=0)
    return (
        lambda: model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0),
        lambda: model.predict(x, batch_size=batch_size, verbose=0),
    )


def interleaved_rates(runs, n, repeats):
    """`(train, inference)`: images/s of every repeat per name of `runs` (`{name: (train, infer)}`,
    callables that each process `n` images), the names' order rotating every repeat."""
    names = list(runs)
    train, infer = {name: [] for name in names}, {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            for run, rates in zip(runs[name], (train[name], infer[name])):
                start = time.perf_counter()
                run()
                rates.append(n / (time.perf_counter() - start))
    return train, infer


def interleaved_throughput(models, shape, *, batch_size, steps, repeats, num_classes=10):
    """`(train, inference)`: median images/s per model name of `models` (compiled `keras.Model`s), each
    timed `repeats` times on `batch_size * steps` random images of `shape` (one epoch of `fit`, then
    `predict`)."""
    x, y = random_data(shape, batch_size * steps, num_classes)
    runs = {name: keras_runs(model, x, y, batch_size) for name, model in models.items()}
    train, infer = interleaved_rates(runs, len(x), repeats)
    median = lambda d: {k: statistics.median(v) for k, v in d.items()}  # noqa: E731
    return median(train), median(infer)
