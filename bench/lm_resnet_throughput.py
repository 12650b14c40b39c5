"""Throughput of LM-ResNet-20 against its Euler (plain ResNet) mode and a plain-Keras ResNet-20.

Measured in one process, interleaved (A B C, B C A, C A B, ...) and summarised by the median, so
machine noise hits all three alike. Prints images/s and the ratios the project tracks:
LM vs Euler training throughput (goal: the LM update costs <= 5 %) and odezoo Euler vs
the reference (goal: >= 0.95).

    python bench/lm_resnet_throughput.py [--batch-size 128] [--steps 20] [--repeats 5] [--threads N]
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from odezoo import LMResNet  # noqa: E402
from odezoo.testing import reference_resnet  # noqa: E402

SHAPE, MEAN, STD = (28, 28, 1), [0.286], [0.353]


def build(kind):
    if kind == "reference":
        model = reference_resnet(20, 10, SHAPE, mean=MEAN, std=STD)
    else:
        model = LMResNet(depth=20, num_classes=10, image_shape=SHAPE, scheme=kind, mean=MEAN, std=STD)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=0, help="TensorFlow intra- and inter-op threads (0: TF's default)"
    )
    args = parser.parse_args()
    if args.threads and keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = rng.uniform(0, 1, (n, *SHAPE)).astype("float32")
    y = rng.integers(0, 10, n)
    kinds = ("lm", "euler", "reference")
    models = {kind: build(kind) for kind in kinds}
    for model in models.values():  # compile the train and predict functions
        model.fit(x[: 2 * args.batch_size], y[: 2 * args.batch_size], batch_size=args.batch_size, verbose=0)
        model.predict(x[: 2 * args.batch_size], batch_size=args.batch_size, verbose=0)
    train = {kind: [] for kind in kinds}
    infer = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):
        order = kinds[repeat % 3 :] + kinds[: repeat % 3]  # rotate, so no model always goes first
        for kind in order:
            model = models[kind]
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)
            train[kind].append(n / (time.perf_counter() - start))
            start = time.perf_counter()
            model.predict(x, batch_size=args.batch_size, verbose=0)
            infer[kind].append(n / (time.perf_counter() - start))
    med = lambda d: {k: statistics.median(v) for k, v in d.items()}  # noqa: E731
    train, infer = med(train), med(infer)
    report = {
        "batch_size": args.batch_size,
        "images_per_run": n,
        "repeats": args.repeats,
        "backend": keras.config.backend(),
        "threads": args.threads or "default",
        "train_images_per_s": {k: round(v, 1) for k, v in train.items()},
        "inference_images_per_s": {k: round(v, 1) for k, v in infer.items()},
        "train_lm_over_euler": round(train["lm"] / train["euler"], 3),
        "train_euler_over_reference": round(train["euler"] / train["reference"], 3),
        "inference_lm_over_euler": round(infer["lm"] / infer["euler"], 3),
        "inference_euler_over_reference": round(infer["euler"] / infer["reference"], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
