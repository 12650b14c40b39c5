"""The residual network's numerical schemes compared on Fashion-MNIST, seeds pooled (issue 30 §4).

Reads the runs of `odezoo train lm_resnet20_fashion_mnist --set scheme=X --set seed=S --workdir
RUNS/X_sS` (each run's `metrics.json` and the preset folder it names). Per run: the test accuracy the
recipe measured (on the first `limit` test images when the run set `limit`), the final training loss
(the last epoch's running mean) and the training seconds (sum over epochs) from the run's history;
measured here on the first `--examples` test images: PGD robust accuracy (L-inf, step eps/4, random
start, seed 0) and accuracy under Gaussian input noise clipped to [0, 1] (seed 0). A run's measures
are cached in `RUNS/X_sS/scheme_compare.json` (per attack and noise setting), so the script resumes.
Prints a Markdown table of mean ± sd over seeds (sample sd), marks the differences from Euler that
exceed the seed spread (|difference of means| > sum of the two sds) and writes everything as JSON.

    python bench/scheme_compare.py --runs runs/schemes --out bench/results/scheme_compare.json
"""

import argparse
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCHEMES = ("euler", "lm", "heun", "midpoint", "rk4", "backward_euler")
QUALITY = ("test_accuracy", "train_loss", "robust_accuracy", "noise_accuracy")  # tested against the spread
METRICS = (*QUALITY, "train_seconds")  # training seconds on a shared machine: shown, not tested
HEADERS = ("test accuracy", "final training loss", "PGD accuracy", "noise accuracy", "training s")


def measure(folder, images, labels, args):
    """PGD and noise accuracy (fractions) of the model in `folder` on `images`."""
    import numpy as np

    import odezoo
    from odezoo.adversarial import robust_evaluate

    model = odezoo.load(folder)
    attacked = robust_evaluate(
        model, (images, labels), eps=args.eps, step=args.eps / 4, steps=args.pgd_steps, seed=0
    )
    noise = np.random.default_rng(0).normal(0.0, args.sigma, images.shape).astype("float32")
    predicted = np.argmax(model.predict(np.clip(images + noise, 0.0, 1.0), batch_size=256, verbose=0), -1)
    return {
        "robust_accuracy": attacked["robust_accuracy"],
        "noise_accuracy": float(np.mean(predicted == labels)),
        "parameters": int(model.count_params()),
    }


def run_result(workdir, images, labels, args):
    """One run's numbers: the recipe's (test accuracy, history) and `measure`'s, cached in the run."""
    metrics = json.loads((workdir / "metrics.json").read_text())
    key = f"eps={args.eps},steps={args.pgd_steps},sigma={args.sigma},examples={args.examples}"
    cache_file = workdir / "scheme_compare.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    if key not in cache:
        cache[key] = measure(Path(metrics["preset_dir"]), images, labels, args)
        cache_file.write_text(json.dumps(cache, indent=2) + "\n")
    history = metrics["history"]
    return {
        "test_accuracy": metrics["test_accuracy"],
        "train_loss": float(history[-1]["loss"]),
        "train_seconds": sum(epoch["seconds"] for epoch in history),
        "epochs": len(history),
        **cache[key],
    }


def summarize(values):
    """`{"mean", "sd", "values"}`; sd is the sample sd (0 for one value)."""
    return {
        "mean": statistics.mean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/schemes", help="folder holding <scheme>_s<seed>/ workdirs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--schemes", default=",".join(SCHEMES), help="comma-separated, from " + ", ".join(SCHEMES)
    )
    parser.add_argument("--examples", type=int, default=1000, help="test images for PGD and noise")
    parser.add_argument("--eps", type=float, default=0.02, help="L-inf budget (step eps/4)")
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--sigma", type=float, default=0.1, help="Gaussian noise sd on [0, 1] images")
    parser.add_argument("--out", default="bench/results/scheme_compare.json")
    args = parser.parse_args()

    import numpy as np

    from odezoo.data.images import image_dataset

    ds, _ = image_dataset("fashion_mnist", "test", batch_size=args.examples, limit=args.examples)
    images, labels = (np.asarray(t) for t in next(iter(ds)))
    runs, results = Path(args.runs), {}
    for scheme in args.schemes.split(","):
        per_seed = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            workdir = runs / f"{scheme}_s{seed}"
            if not (workdir / "metrics.json").exists():
                print(f"missing: {workdir} (no metrics.json), left out")
                continue
            per_seed[seed] = run_result(workdir, images, labels, args)
            print(scheme, seed, per_seed[seed], flush=True)
        if per_seed:
            results[scheme] = {
                "seeds": sorted(per_seed),
                "parameters": per_seed[min(per_seed)]["parameters"],
                "epochs": per_seed[min(per_seed)]["epochs"],
                **{m: summarize([r[m] for r in per_seed.values()]) for m in METRICS},
            }
    exceeds = {  # a spread needs two seeds on both sides
        scheme: {
            m: abs(r[m]["mean"] - results["euler"][m]["mean"]) > r[m]["sd"] + results["euler"][m]["sd"]
            for m in QUALITY
        }
        for scheme, r in results.items()
        if scheme != "euler" and len(r["seeds"]) > 1 and len(results.get("euler", {}).get("seeds", ())) > 1
    }
    report = {
        "runs": str(runs),
        "pgd": {"eps": args.eps, "step": args.eps / 4, "steps": args.pgd_steps, "examples": args.examples},
        "noise": {"sigma": args.sigma, "clipped": [0, 1], "seed": 0, "examples": args.examples},
        "schemes": results,
        "difference_from_euler_exceeds_seed_spread": exceeds,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n| scheme | seeds | parameters | {' | '.join(HEADERS)} |")
    print("|---" * (3 + len(METRICS)) + "|")
    for scheme, r in results.items():
        cells = []
        for m in METRICS:
            mean, sd = r[m]["mean"], r[m]["sd"]
            if m == "train_loss":
                cell = f"{mean:.3f} ± {sd:.3f}"
            elif m == "train_seconds":
                cell = f"{mean:.0f} ± {sd:.0f}"
            else:
                cell = f"{100 * mean:.1f} ± {100 * sd:.1f} %"
            cells.append(f"**{cell}**" if exceeds.get(scheme, {}).get(m) else cell)
        print(f"| `{scheme}` | {len(r['seeds'])} | {r['parameters']:,} | {' | '.join(cells)} |")
    print("\nBold: |mean - Euler's mean| > sd + Euler's sd (sample sd over seeds).")
    for scheme, tests in exceeds.items():
        above = [m for m in QUALITY if tests[m]]
        print(f"{scheme} vs euler: beyond spread {above}, within {[m for m in QUALITY if m not in above]}")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
