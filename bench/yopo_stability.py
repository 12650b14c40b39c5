"""Why YOPO collapses on Fashion-MNIST, and which change stops it (issue 13 §2): short YOPO-5-3 runs of
the recipe's SmallCNN on the real training set, one per (variant, seed), each with a constant learning
rate after an optional linear warm-up, so that a collapse is not hidden by a decaying rate.

    python bench/yopo_stability.py --variants paper,official --seeds 0,1,2 --steps 600 \
        --out bench/results/yopo_stability.json
    python bench/yopo_stability.py --seeds 0,1 --grad-norms 100   # the unclipped gradient's norm

Every 50 steps a run records the loss and accuracy on the training adversary's examples (running mean
of those 50 steps); at the end, the fraction of dead units (zero on all of 512 clean test images) of
every ReLU layer, and clean and PGD-20 accuracy (eps 0.1, step 0.01) on the first 1,000 test images.
A run counts as collapsed when its last 50 steps' accuracy is at most 12 % (chance is 10 %).
Results are appended as JSON lines to `--out`, and (variant, seed, steps, lr) already there are skipped,
so a killed study resumes.
"""

import argparse
import json
import time
from pathlib import Path

VARIANTS = {
    # name: (first_layer_rule, clean_weight, warm-up steps, global clip norm)
    "paper": ("paper", 0.0, 0, None),
    "official": ("official", 0.0, 0, None),
    "official_torch2": ("official_torch2", 0.0, 0, None),
    "paper+clean": ("paper", 1.0, 0, None),
    "paper+warmup": ("paper", 0.0, 200, None),
    "paper+clip": ("paper", 0.0, 0, 1.0),
    "paper+warmup+clip": ("paper", 0.0, 200, 1.0),
    "official+clean": ("official", 1.0, 0, None),
    # a clip near the unclipped norm's spikes (56-283) and above its medians (1-8): cuts the spikes only
    "paper+clip10": ("paper", 0.0, 0, 10.0),
    "official+clip10": ("official", 0.0, 0, 10.0),
}
RELUS = ("relu1", "relu2", "relu3", "relu4", "fc1", "fc2")


def dead_fractions(model, images):
    """Per ReLU layer: the fraction of units (channels for convolutions) zero on every image."""
    import keras
    import numpy as np

    probe = keras.Model(model.inputs[0], [model.get_layer(n).output for n in RELUS])
    outputs = probe.predict(images, verbose=0, batch_size=256)
    fractions = {}
    for name, out in zip(RELUS, outputs):
        alive = (np.asarray(out) > 0).reshape(-1, out.shape[-1]).any(axis=0)
        fractions[name] = float(1 - alive.mean())
    return fractions


def yopo_run(seed, trainer_class=None, **trainer_kwargs):
    """The study's common setup, seeded: the shuffled training batches (128) and an `AdversarialTrainer`
    (or `trainer_class`) running YOPO-5-3 (eps 0.1, step 0.01) on a fresh SmallCNN."""
    import keras

    from odezoo.adversarial import AdversarialTrainer, Attack
    from odezoo.data.images import image_dataset
    from odezoo.models.convnets import SmallCNN

    keras.utils.set_random_seed(seed)
    train, _ = image_dataset("fashion_mnist", "train", batch_size=128, training=True, seed=seed)
    trainer = (trainer_class or AdversarialTrainer)(
        SmallCNN(num_classes=10),
        method="yopo",
        attack=Attack(0.1, 0.01, m=5, n=3),
        first_layer=SmallCNN.first_layer,
        **trainer_kwargs,
    )
    return train, trainer


def one_run(variant, seed, steps, learning_rate):
    import keras
    import numpy as np

    from odezoo.adversarial import pgd
    from odezoo.data.images import image_dataset

    rule, clean_weight, warmup, clipnorm = VARIANTS[variant]
    train, trainer = yopo_run(seed, first_layer_rule=rule, clean_weight=clean_weight, clipnorm=clipnorm)
    model = trainer.model
    test, _ = image_dataset("fashion_mnist", "test", batch_size=1000, limit=1000)
    x_test, y_test = next(iter(test))
    rate = learning_rate
    if warmup:
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, 10**9, warmup_target=learning_rate, warmup_steps=warmup
        )
    trainer.compile(
        optimizer=keras.optimizers.SGD(rate, momentum=0.9, weight_decay=5e-4),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    fit = trainer.fit(train.repeat(), epochs=steps // 50, steps_per_epoch=50, verbose=0)
    history = [{k: round(float(v[i]), 4) for k, v in fit.history.items()} for i in range(steps // 50)]
    seconds = time.perf_counter() - start
    clean = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test.numpy()))
    adv = pgd(model, x_test, y_test, eps=0.1, step=0.01, steps=20)
    robust = float(np.mean(np.argmax(model.predict(adv, verbose=0), -1) == y_test.numpy()))
    return {
        "variant": variant,
        "seed": seed,
        "steps": steps,
        "learning_rate": learning_rate,
        "history": history,
        "collapsed": history[-1]["accuracy"] <= 0.12,
        "dead": dead_fractions(model, x_test[:512]),
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "train_seconds": seconds,
    }


def gradient_norms(seed, steps, learning_rate):
    """The global norm of YOPO-5-3's summed gradient at each of the first `steps` unclipped steps
    (eagerly, so the order of the random draws differs from `one_run`'s): min / median / max per 25."""
    import keras
    import numpy as np
    import tensorflow as tf

    from odezoo.adversarial import AdversarialTrainer

    norms = []

    class Probe(AdversarialTrainer):
        def _apply(self, grads, variables):
            norms.append(float(tf.linalg.global_norm(grads)))
            super()._apply(grads, variables)

    train, trainer = yopo_run(seed, Probe)
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9, weight_decay=5e-4)
    trainer.compile(optimizer=optimizer, run_eagerly=True)
    for x, y in train.repeat().take(steps):
        trainer.train_on_batch(x, y)
    blocks = np.split(np.array(norms), len(norms) // 25)
    return [[round(float(f(b)), 2) for f in (np.min, np.median, np.max)] for b in blocks]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--learning-rate", type=float, default=0.016, help="constant rate after warm-up")
    parser.add_argument("--out", default="bench/results/yopo_stability.jsonl")
    parser.add_argument(
        "--grad-norms", type=int, default=0, help="instead: log this many steps' gradient norms"
    )
    args = parser.parse_args(argv)
    if args.grad_norms:
        for seed in (int(s) for s in args.seeds.split(",")):
            blocks = gradient_norms(seed, args.grad_norms, args.learning_rate)
            print(f"seed {seed}: summed-gradient norm min / median / max per 25 steps: {blocks}", flush=True)
        return
    out = Path(args.out)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        for seed in (int(s) for s in args.seeds.split(",")):
            key = (variant, seed, args.steps, args.learning_rate)
            if any((r["variant"], r["seed"], r["steps"], r["learning_rate"]) == key for r in done):
                continue
            record = one_run(variant, seed, args.steps, args.learning_rate)
            done.append(record)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            accs = " ".join(f"{h['accuracy']:.2f}" for h in record["history"])
            print(
                f"{variant:<16} seed {seed} lr {args.learning_rate:g}: adv train acc per 50 steps {accs} | "
                f"clean {record['clean_accuracy']:.3f} PGD-20 {record['robust_accuracy']:.3f} | dead "
                + " ".join(f"{k} {v:.2f}" for k, v in record["dead"].items())
                + f" | {record['train_seconds']:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
