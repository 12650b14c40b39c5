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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _throughput import interleaved_throughput, set_threads  # noqa: E402

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
    set_threads(args.threads)
    n = args.batch_size * args.steps
    models = {kind: build(kind) for kind in ("lm", "euler", "reference")}
    train, infer = interleaved_throughput(
        models, SHAPE, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats
    )
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
