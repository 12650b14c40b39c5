"""YOPO's headline measurement, on this machine: the same SmallCNN trained on Fashion-MNIST with natural
training, PGD-10, Free-4, YOPO-5-3 and YOPO-3-5, each with its recipe's schedule, one after the other in
one process (PGD-10 over 2 seeds and YOPO-5-3 over 3, the two methods the goal compares; and YOPO-5-3
once more for as many epochs as PGD-10, which shows that it trains that long without collapsing); then
clean and PGD-40 accuracy (eps 0.1, step 0.01) on the full 10k test split.

    python bench/yopo_speed.py --workdir runs/yopo_speed [--out bench/results/yopo_speed_cpu.json]

Prints wall and CPU minutes of training (evaluation excluded), each as a ratio to PGD-10's, clean and
robust accuracy (means over the seeds, with their range) — the shape of the YOPO paper's table; then
times one training batch of each method on random images, interleaved, which splits YOPO's cost into
full passes and first-layer passes; then whether YOPO-5-3 meets the goal (mean robust accuracy within
1.5 points of PGD-10's, in at most a quarter of its training time: the two batch times of this one
process times each recipe's epochs, since the table's runs may come from several machines or a shared
one). Each run checkpoints every epoch: rerunning the command resumes, and reuses runs already finished
with the same config. A finished run's config and summary are also kept as `--records/<run>.json`
(committed), so the table can be completed over several sessions or machines; `--only yopo5_3,pgd`
runs just those rows (ratios need the PGD-10 row), and `--no-train` tables the finished runs without
training the missing ones. The presets the seed-0 natural, PGD-10 and YOPO-5-3 runs write
(`<workdir>/<run>/<preset>/`) are the ones odezoo publishes.
"""

import argparse
import json
import os
import platform
from dataclasses import asdict, fields, replace
from pathlib import Path

from odezoo.recipes.convnets import FASHION_MNIST, train

# (run folder, label, recipe config, seeds)
RUNS = [
    ("natural", "Natural", FASHION_MNIST["natural"], (0,)),
    ("yopo5_3", "YOPO-5-3", FASHION_MNIST["yopo5_3"], (0, 1, 2)),
    ("pgd", "PGD-10", FASHION_MNIST["pgd"], (0, 1)),
    ("yopo3_5", "YOPO-3-5", FASHION_MNIST["yopo3_5"], (0,)),
    ("free", "Free-4", FASHION_MNIST["free"], (0,)),
    (
        "yopo5_3_as_long_as_pgd",
        "YOPO-5-3, PGD-10's epochs",
        replace(FASHION_MNIST["yopo5_3"], epochs=FASHION_MNIST["pgd"].epochs),
        (0,),
    ),
]


def run(name, config, workdir, records, *, train_missing=True):
    """The run's summary, reused when `records/<run>.json` or `workdir/<run>/` holds a finished run of
    this config (settings added to the recipe since it ran count with their defaults); `None` for a
    run not finished yet unless `train_missing`."""
    name = name if config.seed == 0 else f"{name}_seed{config.seed}"
    folder, record = workdir / name, records and records / f"{name}.json"
    defaults = {f.name: f.default for f in fields(config)}
    if record and record.is_file():
        kept = json.loads(record.read_text())
        if defaults | kept["config"] == asdict(config):
            return kept["summary"] | ({"source": kept["source"]} if "source" in kept else {})
    metrics, saved = folder / "metrics.json", folder / "config.json"
    if metrics.is_file() and saved.is_file() and defaults | json.loads(saved.read_text()) == asdict(config):
        summary = json.loads(metrics.read_text())
    elif train_missing:
        train(config, folder)  # writes metrics.json: the summary and the per-epoch history
        summary = json.loads(metrics.read_text())
    else:
        return None
    if not record:
        return summary
    records.mkdir(parents=True, exist_ok=True)
    kept = {"config": asdict(config), "summary": {k: v for k, v in summary.items() if k != "preset_dir"}}
    record.write_text(json.dumps(kept, indent=1) + "\n")
    return summary


def step_costs(steps=10, repeats=5):
    """Median seconds per training batch (128 random images) of each method, the methods interleaved,
    after a warm-up; plus what they imply for one full pass and one first-layer pass."""
    import time

    import keras
    import numpy as np
    import tensorflow as tf

    from odezoo.adversarial import AdversarialTrainer
    from odezoo.models.convnets import SmallCNN

    rng = np.random.default_rng(0)
    batch = (rng.uniform(0, 1, (128, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 128))
    data = tf.data.Dataset.from_tensors(batch).repeat()
    methods = {  # each as its recipe trains it (first-layer rule, clipping)
        "Natural": FASHION_MNIST["natural"],
        "PGD-10": FASHION_MNIST["pgd"],
        "Free-4": FASHION_MNIST["free"],
        "YOPO-5-3": FASHION_MNIST["yopo5_3"],
        "YOPO-3-5": FASHION_MNIST["yopo3_5"],
        "YOPO-5-0": replace(FASHION_MNIST["yopo5_3"], n=0),
    }
    trainers = {}
    for label, config in methods.items():
        trainer = AdversarialTrainer(
            SmallCNN(),
            method=config.method,
            attack=config.attack(),
            first_layer=SmallCNN.first_layer,
            first_layer_rule=config.first_layer_rule,
            clipnorm=config.clipnorm or None,
        )
        trainer.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
        trainer.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # trace and warm up
        trainers[label] = trainer
    times = {label: [] for label in trainers}
    for _ in range(repeats):
        for label, trainer in trainers.items():
            start = time.perf_counter()
            trainer.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
            times[label].append((time.perf_counter() - start) / steps)
    seconds = {label: float(np.median(t)) for label, t in times.items()}
    # YOPO-m-n runs m full passes and n + (m - 1)(n - 1) + 1 first-layer passes of its own for n >= 1
    # (passes 2..m also give f0's input gradient and the owed Hamiltonian gradient), m for n = 0: 5-3
    # vs 5-0 isolates 7 of them (each with its share of that extra full-pass work: an estimate)
    first = (seconds["YOPO-5-3"] - seconds["YOPO-5-0"]) / 7
    full = (seconds["YOPO-5-0"] - 5 * first) / 5
    return {"seconds_per_batch": seconds, "full_pass_seconds": full, "first_layer_pass_seconds": first}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/yopo_speed")
    parser.add_argument("--out", help="also write the table as JSON here")
    parser.add_argument("--limit", type=int, default=0, help="examples per split (smoke runs)")
    parser.add_argument("--epochs", type=int, default=0, help="override every method's epochs (smoke runs)")
    parser.add_argument(
        "--records", default="bench/results/yopo_speed_runs", help="finished runs' summaries (not smoke runs)"
    )
    parser.add_argument("--only", default="", help="comma-separated run folders, e.g. yopo5_3,pgd")
    parser.add_argument("--no-train", action="store_true", help="table the finished runs only, train none")
    args = parser.parse_args(argv)
    smoke = args.limit or args.epochs
    workdir, records = Path(args.workdir), None if smoke else Path(args.records)
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - {folder for folder, *_ in RUNS})
    if unknown:
        parser.error(f"unknown run {unknown}; choose from {', '.join(folder for folder, *_ in RUNS)}")
    rows = []
    for folder, label, config, seeds in RUNS:
        if only and folder not in only:
            continue
        config = replace(config, limit=args.limit, epochs=args.epochs or config.epochs)
        runs = [
            run(folder, replace(config, seed=seed), workdir, records, train_missing=not args.no_train)
            for seed in seeds
        ]
        missing = [seed for seed, r in zip(seeds, runs) if r is None]
        if missing:
            print(f"{label}: seeds {missing} of {list(seeds)} not run yet (--no-train)")
            seeds, runs = [s for s in seeds if s not in missing], [r for r in runs if r is not None]
            if not runs:
                continue
        row = {
            "method": label,
            "epochs": config.epochs,
            "learning_rate": config.learning_rate,
            "warmup_epochs": config.warmup_epochs,
            "seeds": list(seeds),
            "missing_seeds": missing,
            "attack": runs[0]["attack"],
        }
        for key in ("train_seconds", "train_cpu_seconds", "clean_accuracy", "robust_accuracy"):
            values = [r[key] for r in runs]
            row |= {key: sum(values) / len(values), f"{key}_per_seed": values}
        row["sources"] = sorted({r["source"] for r in runs if "source" in r})  # runs of another session
        rows.append(row)
    if not rows:
        parser.error("no finished run to table: run without --no-train first")
    pgd = next((r for r in rows if r["method"] == "PGD-10"), None)
    yopo = next((r for r in rows if r["method"] == "YOPO-5-3"), None)
    print(f"SmallCNN on Fashion-MNIST, {rows[0]['attack']}; times are training only, this machine")
    print(f"{'method':<27}{'seeds':>6}{'epochs':>7}{'wall min':>10}{'÷ PGD-10':>10}{'CPU min':>9}"
          f"{'÷ PGD-10':>10}{'clean %':>9}{'robust % (range)':>24}")  # fmt: skip
    for r in rows:
        r["wall_ratio"] = r["train_seconds"] / pgd["train_seconds"] if pgd else float("nan")
        r["cpu_ratio"] = r["train_cpu_seconds"] / pgd["train_cpu_seconds"] if pgd else float("nan")
        spread = [100 * v for v in r["robust_accuracy_per_seed"]]
        robust = f"{100 * r['robust_accuracy']:.2f}" + (
            f" ({min(spread):.2f}-{max(spread):.2f})" if len(spread) > 1 else ""
        )
        print(f"{r['method']:<27}{len(r['seeds']):>6}{r['epochs']:>7}{r['train_seconds'] / 60:>10.1f}"
              f"{r['wall_ratio']:>10.2f}{r['train_cpu_seconds'] / 60:>9.1f}{r['cpu_ratio']:>10.2f}"
              f"{100 * r['clean_accuracy']:>9.2f}{robust:>24}{' *' if r['sources'] else ''}")  # fmt: skip
    for source in sorted({s for r in rows for s in r["sources"]}):
        print(f"* from {source}")
    costs = step_costs()
    per_batch = costs["seconds_per_batch"]
    print("seconds per batch of 128: " + ", ".join(f"{k} {v:.3f}" for k, v in per_batch.items()))
    print(f"one full forward/backward pass with weight gradients {costs['full_pass_seconds']:.4f} s, one "
          f"first-layer pass {costs['first_layer_pass_seconds']:.4f} s "
          f"({costs['first_layer_pass_seconds'] / costs['full_pass_seconds']:.0%})")  # fmt: skip
    gap = goal = time_ratio = None
    if pgd and yopo:
        # the goal's time half from one process: both methods' batches timed side by side, times their
        # recipes' epochs (same batches per epoch); the table's ratios may compare runs of two machines
        batch_ratio = per_batch["YOPO-5-3"] / per_batch["PGD-10"]
        time_ratio = batch_ratio * yopo["epochs"] / pgd["epochs"]
        gap = 100 * (pgd["robust_accuracy"] - yopo["robust_accuracy"])
        goal = gap <= 1.5 and time_ratio <= 0.25
        partial = " (provisional: seeds missing)" if pgd["missing_seeds"] or yopo["missing_seeds"] else ""
        verdict = "met" if goal else "NOT met"
        print(
            f"YOPO-5-3 vs PGD-10: robust accuracy {gap:.2f} points below; training time {batch_ratio:.2f}x "
            f"per batch x {yopo['epochs']}/{pgd['epochs']} epochs = {time_ratio:.2f}x -> goal (<= 1.5 points,"
            f" <= 0.25x) {verdict}{partial}"
        )
    if args.out:
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
        result = {"rows": rows, "robust_gap_points": gap, "time_ratio": time_ratio, "goal_met": goal,
                  "limit": args.limit, **costs, "machine": machine,
                  "command": "python bench/yopo_speed.py"}  # fmt: skip
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
