"""Training throughput of Macaron Net (`scheme="strang"`) against the Transformer (`scheme="lie_trotter"`)
at equal parameters (the same layers, width, heads and `intermediate_dim`; Macaron has `3 x hidden_dim`
more per layer), in one process.

    python bench/macaron_training.py [--hidden-dim 256] [--num-layers 3] [--batch 128] [--length 32]
        [--steps 3] [--repeats 5] [--out bench/results/macaron_training_tf_cpu.json]

Each model trains (`fit`, Adam, cross-entropy on the logits) on the same random batches of `--batch`
source/target pairs of `--length` tokens (`batch x length` target tokens a batch, fairseq's
`--max-tokens` count); the runs are interleaved (A B, B A, ...) and summarised by the median, so machine
noise hits both alike. Prints target tokens/s, the ratio, and whether Macaron is at most 5 % slower
(the goal of issue 10).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from odezoo.models import MacaronTransformer  # noqa: E402
from odezoo.models.macaron.macaron import INPUT_NAMES  # noqa: E402

SCHEMES = ("strang", "lie_trotter")


def build(scheme, args):
    keras.utils.set_random_seed(0)
    model = MacaronTransformer(
        vocabulary_size=args.vocabulary_size, num_layers=args.num_layers, hidden_dim=args.hidden_dim,
        num_heads=args.num_heads, intermediate_dim=args.intermediate_dim, scheme=scheme,
        max_positions=args.length,
    )  # fmt: skip
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-dim", type=int, default=1024, help="the Transformer's d_ff")
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=128, help="sentence pairs a batch")
    parser.add_argument("--length", type=int, default=32, help="source and target tokens a sentence")
    parser.add_argument("--steps", type=int, default=3, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n, shape = args.batch * args.steps, (args.batch * args.steps, args.length)
    ids = [rng.integers(4, args.vocabulary_size, shape).astype("int32") for _ in range(3)]
    x = dict(zip(INPUT_NAMES, (ids[0], np.ones(shape, "int32"), ids[1], np.ones(shape, "int32"))))
    models = {scheme: build(scheme, args) for scheme in SCHEMES}
    for model in models.values():  # trace the train step
        model.fit(
            {k: v[: args.batch] for k, v in x.items()}, ids[2][: args.batch], batch_size=args.batch, verbose=0
        )
    rates = {scheme: [] for scheme in SCHEMES}
    for repeat in range(args.repeats):
        for scheme in SCHEMES[repeat % 2 :] + SCHEMES[: repeat % 2]:
            start = time.perf_counter()
            models[scheme].fit(x, ids[2], batch_size=args.batch, epochs=1, shuffle=False, verbose=0)
            rates[scheme].append(n * args.length / (time.perf_counter() - start))
    median = {scheme: statistics.median(r) for scheme, r in rates.items()}
    ratio = median["strang"] / median["lie_trotter"]
    report = {
        "backend": keras.config.backend(),
        "cpus": os.cpu_count(),
        "model": {
            "hidden_dim": args.hidden_dim,
            "num_layers": args.num_layers,
            "num_heads": args.num_heads,
            "intermediate_dim": args.intermediate_dim,
            "vocabulary_size": args.vocabulary_size,
        },
        "parameters": {scheme: model.count_params() for scheme, model in models.items()},
        "target_tokens_per_batch": args.batch * args.length,
        "batches_per_run": args.steps,
        "repeats": args.repeats,
        "train_tokens_per_s": {scheme: round(rate, 1) for scheme, rate in median.items()},
        "all_runs_tokens_per_s": {scheme: [round(r, 1) for r in runs] for scheme, runs in rates.items()},
        "macaron_over_transformer": round(ratio, 3),
        "macaron_at_most_5_percent_slower": ratio >= 0.95,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
