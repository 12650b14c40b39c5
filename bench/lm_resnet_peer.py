"""Throughput of odezoo's LMResNet-20 against the authors' official PyTorch LM-ResNet-20.

Training and inference images/s of `odezoo.LMResNet(depth=20, scheme="lm")` (Keras) and `MResNet20(
pretrain=False)` (the official code's LM two-step mode) at 32x32x3, 10 classes, on the same random
images (numpy, seed 0; PyTorch gets them as NCHW, transposed once before timing) and labels. Both
train with SGD(0.1, momentum 0.9) and cross-entropy from logits: odezoo with one `fit` epoch of
`--steps` batches, PyTorch with a Python loop over the same batches in `model.train()`; inference is
one `predict` against a loop in `model.eval()` under `torch.no_grad()`. Both run in one process, are
warmed up on two batches, then timed `--repeats` times in an order that alternates every repeat;
prints the medians with their min-max, and ends with one line naming odezoo's ratio to the official
code.

    git clone https://github.com/2prime/LM-ResNet   # the official code; never copied into odezoo
    python bench/lm_resnet_peer.py --official LM-ResNet/MResNet.py [--batch-size 128] [--steps 10]
        [--repeats 5] [--threads N] [--out bench/results/lm_resnet_peer.json]

The official `MResNet.py` is read from `--official` (the file or the folder holding it) and loaded
with importlib; its `from init import *` names a module the repository lacks (nothing of it is used by
`MResNet20`), so an empty module `init` is put into `sys.modules` first. `--threads N` sets
TensorFlow's and PyTorch's intra- and inter-op threads to N; without it each framework keeps its
default (both are printed).
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (oneDNN on only on AVX-512 VNNI / AMX CPUs)")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _throughput import interleaved_rates, keras_runs, random_data, set_threads  # noqa: E402

from odezoo import LMResNet  # noqa: E402

SHAPE, CLASSES = (32, 32, 3), 10
GET_IT = "`git clone https://github.com/2prime/LM-ResNet` and pass `--official LM-ResNet/MResNet.py`"


def official_model(path):
    """The official `MResNet20(num_classes=10, pretrain=False)`, loaded from `path` (`MResNet.py` or its
    folder); exits with what to pass when it is not there."""
    file = Path(path) / "MResNet.py" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise SystemExit(f"lm_resnet_peer: no official MResNet.py at --official {path}; {GET_IT}")
    sys.modules.setdefault("init", types.ModuleType("init"))  # its `from init import *`: nothing used
    spec = importlib.util.spec_from_file_location("official_mresnet", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "MResNet20"):
        raise SystemExit(f"lm_resnet_peer: {file} has no MResNet20; {GET_IT}")
    return module.MResNet20(num_classes=CLASSES, pretrain=False)


def torch_runs(model, x, y, batch_size):
    """`(train, infer)` callables of the PyTorch `model` on `x` (NHWC, passed as NCHW), `y`: a loop of
    SGD steps in train mode, one of forward passes in eval mode without gradients; both run here on two
    batches first."""
    import torch

    x, y = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()

    def train(end=len(x)):
        model.train()
        for i in range(0, end, batch_size):
            optimizer.zero_grad()
            loss(model(x[i : i + batch_size]), y[i : i + batch_size]).backward()
            optimizer.step()

    def infer(end=len(x)):
        model.eval()
        with torch.no_grad():
            for i in range(0, end, batch_size):
                model(x[i : i + batch_size])

    train(min(2 * batch_size, len(x)))
    infer(min(2 * batch_size, len(x)))
    return train, infer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="the official MResNet.py, or the folder holding it")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="both frameworks' threads (0: their defaults)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    import torch

    set_threads(args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    torch.manual_seed(0)
    official = official_model(args.official)
    keras.utils.set_random_seed(0)
    model = LMResNet(depth=20, num_classes=CLASSES, image_shape=SHAPE, scheme="lm")
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = random_data(SHAPE, args.batch_size * args.steps, CLASSES)
    runs = {
        "odezoo": keras_runs(model, x, y, args.batch_size),
        "official PyTorch": torch_runs(official, x, y, args.batch_size),
    }
    train, infer = interleaved_rates(runs, len(x), args.repeats)

    import tensorflow as tf

    threads = {
        "tensorflow": [
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        ],
        "torch": [torch.get_num_threads(), torch.get_num_interop_threads()],
    }
    parameters = {  # the official model also holds its unused `bn1`, `downsample1` and 3 `ks`
        "odezoo": sum(int(np.prod(v.shape)) for v in model.trainable_weights),
        "official PyTorch": sum(p.numel() for p in official.parameters()),
    }
    print(
        f"LM-ResNet-20, 32x32x3, batch {args.batch_size}, {len(x)} images per run, {args.repeats} repeats; "
        f"{os.cpu_count()} CPUs; threads (intra, inter): TensorFlow {threads['tensorflow']} (0: its "
        f"default), PyTorch {threads['torch']}; TensorFlow loaded with TF_ENABLE_ONEDNN_OPTS={ONEDNN} "
        "(keras loads it before odezoo here, so odezoo's default does not apply); trainable parameters: "
        + ", ".join(f"{name} {count:,}" for name, count in parameters.items())
    )
    for mode, rates in (("training", train), ("inference", infer)):
        for name, values in rates.items():
            print(
                f"{mode:>9} {name:>16}: {statistics.median(values):7.1f} images/s "
                f"({min(values):.1f}-{max(values):.1f})"
            )
    ratio = {
        mode: statistics.median(rates["odezoo"]) / statistics.median(rates["official PyTorch"])
        for mode, rates in (("training", train), ("inference", infer))
    }
    if args.out:
        report = {"settings": vars(args), "cpus": os.cpu_count(), "threads": threads,
                  "parameters": parameters, "train_images_per_s": train,
                  "inference_images_per_s": infer, "ratio_odezoo_over_official": ratio}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"lm_resnet_peer: training ratio {ratio['training']:.2f} (odezoo / official PyTorch), "
        f"inference ratio {ratio['inference']:.2f}"
    )


if __name__ == "__main__":
    main()
