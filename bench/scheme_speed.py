"""Training and inference throughput of the residual network per numerical scheme, relative to Euler.

Every scheme of `odezoo/models/_schemes.py` at one depth (`LMResNet(scheme=...)`): with shared stages
(one block evaluated at each stage of its step: `s` times Euler's block evaluations) and, where the
depth allows it, stacked stages (`_stacked`: a step's stages are consecutive blocks, Euler's FLOPs).
All models live in one process and are timed interleaved (the order rotates every repeat) and
summarised by the median, so machine noise hits them alike. Prints images/s and the ratios to Euler.

    python bench/scheme_speed.py [--depth 20] [--batch-size 128] [--steps 10] [--repeats 3] [--threads N]
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _throughput import interleaved_throughput, set_threads  # noqa: E402

from odezoo import LMResNet, OdezooError  # noqa: E402
from odezoo.models._schemes import SCHEMES  # noqa: E402

SHAPE, MEAN, STD = (28, 28, 1), [0.286], [0.353]


def variants(depth):
    """`{label: LMResNet kwargs}`: every scheme with shared stages, and stacked where `depth` allows."""
    out = {}
    for scheme in SCHEMES:
        out[scheme] = {"scheme": scheme}
        if SCHEMES[scheme].evaluations > 1:
            try:
                LMResNet(depth=depth, scheme=scheme, stage_sharing=False, image_shape=SHAPE, num_classes=10)
            except OdezooError:
                continue  # this depth has no stacked layout for the scheme
            out[f"{scheme}_stacked"] = {"scheme": scheme, "stage_sharing": False}
    return out


def build(depth, kwargs):
    model = LMResNet(depth=depth, num_classes=10, image_shape=SHAPE, mean=MEAN, std=STD, **kwargs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="TensorFlow intra- and inter-op threads (0: TF's default)"
    )
    args = parser.parse_args()
    set_threads(args.threads)
    n = args.batch_size * args.steps
    models = {label: build(args.depth, kwargs) for label, kwargs in variants(args.depth).items()}
    train, infer = interleaved_throughput(
        models, SHAPE, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats
    )
    trainable = {
        label: sum(int(np.prod(v.shape)) for v in model.trainable_weights) for label, model in models.items()
    }
    report = {
        "depth": args.depth,
        "batch_size": args.batch_size,
        "images_per_run": n,
        "repeats": args.repeats,
        "backend": keras.config.backend(),
        "threads": args.threads or "default",
        "trainable_parameters": trainable,
        "train_images_per_s": {k: round(v, 1) for k, v in train.items()},
        "inference_images_per_s": {k: round(v, 1) for k, v in infer.items()},
        "train_over_euler": {k: round(v / train["euler"], 3) for k, v in train.items()},
        "inference_over_euler": {k: round(v / infer["euler"], 3) for k, v in infer.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
