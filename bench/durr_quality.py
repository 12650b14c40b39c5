"""DURR's headline table: on the held-out photographs, at each degradation level, the PSNR / SSIM of the
degraded input, BM3D, a one-pass CNN, DURR at every fixed step count and DURR with its learned stopping
(and the steps it chose), all in one process on the same degraded images; plus the card's figure.

    python bench/durr_quality.py durr_denoise_gray [--one-pass RUN/one_pass_durr_denoise_gray] \
        [--also PRESET,...] [--images FOLDER] [--levels 15,25,50,60,65,75] [--seen 15,25,50]
        [--out bench/results/durr_denoise_gray_quality.json] [--figure docs/figures/durr_denoise_gray.png]

- The images and degradations are those of `odezoo eval PRESET --sigma S` / `--quality Q` (the test
  split of the preset's data set; noise seeded by image index), so DURR's rows reproduce the CLI's.
- BM3D (the `bm3d` package, `bm3d.bm3d(z, sigma_psd)`) is given the true noise level `sigma / 255`.
  For JPEG it gets the true RMS error of each compressed image against its clean original (an oracle
  noise level: BM3D has no JPEG model).
- The one-pass CNN is a DURR unit trained for exactly one step on the same data, patches and number
  of updates (`odezoo train <recipe> --set unit_steps=1 --set step_table= --set policy_epochs=0 ...`).
- DURR's learned stopping is `DURR.restore` (the policy asked along the trajectory, at most the
  preset's `max_steps`), as `odezoo eval` runs it. `--also` adds the learned stopping of other DURR
  presets (other policy seeds, the published preset) on the same degraded images, each along its own
  unit's trajectory (shared where the units are equal).
- `--images FOLDER` measures on the image files of a folder instead of the preset's test split.
- "Best fixed steps here" is the best count for that level alone: what stopping that knew the level
  exactly could reach (an oracle, for scale).
- "Best fixed steps" is the single step count with the highest mean PSNR over the `--seen` levels
  (chosen on these test images, which favours the baseline); every fixed count's PSNR is in the JSON.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import odezoo  # noqa: E402
from odezoo.data.restoration import clean_images, degrade  # noqa: E402
from odezoo.models.durr.durr_layers import policy_values  # noqa: E402
from odezoo.presets import resolve  # noqa: E402
from odezoo.tasks.image_restoration import psnr, ssim  # noqa: E402


def scores(clean, restored):
    restored = np.clip(restored, 0.0, 1.0)
    return float(psnr(clean, restored)[0]), float(ssim(clean, restored)[0])


def bm3d_restore(clean, degraded, level, kind):
    import bm3d

    sigma = level / 255.0 if kind == "sigma" else float(np.sqrt(np.mean((degraded - clean) ** 2)))
    return np.asarray(bm3d.bm3d(degraded[0, ..., 0], sigma_psd=sigma), "float32")[None, ..., None]


def trajectory(model, degraded, count):
    """`[x_0, ..., x_count]`: the unit of `model` applied `count` times to `degraded`."""
    states = [degraded]
    for _ in range(count):
        states.append(np.asarray(model.unit(states[-1], degraded)))
    return states


def stopping(model, states, degraded):
    """The step where the policy of `model` stops along `states`, as `DURR.restore` does (its values
    averaged over tiles of `policy_tile` pixels where the model has one)."""
    for t in range(model.max_steps + 1):
        q = np.asarray(policy_values(model.policy, states[t], degraded, model.policy_tile))[0]
        if q[0] >= q[1] or t == model.max_steps:
            return t


def same_unit(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.unit.get_weights(), b.unit.get_weights(), strict=True))


def measure(model, one_pass, others, images, kind, level, fixed_max, keep=None):
    """Per-method lists of (psnr, ssim) over the images, each DURR's steps per image (`"durr"`, then the
    names of `others`), and the arrays of image `keep` (for the figure).

    DURR's trajectory `x_0, x_1, ...` is computed once per image and unit: the fixed step counts read
    it, and the learned stopping is the policy asked along it, as `DURR.restore` does.
    """
    durrs = {"durr": model, **others}
    rows = {name: [] for name in ("degraded", "bm3d", *(["one_pass"] if one_pass else []), *durrs)}
    fixed, steps, kept = [[] for _ in range(fixed_max + 1)], {name: [] for name in durrs}, {}
    for index, image in enumerate(images):
        clean = image[None]
        degraded = model.check_inputs(degrade(clean, **{kind: level}, seed=index))
        restored = {"degraded": degraded, "bm3d": bm3d_restore(clean, degraded, level, kind)}
        if one_pass:
            restored["one_pass"] = one_pass.restore(degraded, steps=1)[0]
        states = trajectory(model, degraded, max(fixed_max, model.max_steps))
        for t in range(fixed_max + 1):
            fixed[t].append(scores(clean, states[t]))
        for name, durr in durrs.items():
            own = states if same_unit(durr, model) else trajectory(durr, degraded, durr.max_steps)
            steps[name].append(stopping(durr, own, degraded))
            restored[name] = own[steps[name][-1]]
        for name, value in restored.items():
            rows[name].append(scores(clean, value))
        if index == keep:
            kept = {"clean": clean, **restored}
    return rows, fixed, steps, kept


def mean_of(pairs):
    return {"psnr": float(np.mean([p for p, _ in pairs])), "ssim": float(np.mean([s for _, s in pairs]))}


def figure(path, kept, level, kind, table, preset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(16, 3.6), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.3]})
    height, width = kept["clean"].shape[1:3]
    top, left = height // 2 - 64, width // 2 - 64
    for ax, name in zip(axes, ("degraded", "bm3d", "durr", "clean")):
        crop = np.clip(kept[name][0, top : top + 128, left : left + 128, 0], 0, 1)
        ax.imshow(crop, cmap="gray", vmin=0, vmax=1)
        label = {"degraded": f"{kind} {level:g}", "bm3d": "BM3D", "durr": "DURR", "clean": "clean"}[name]
        if name != "clean":
            label += f"\n{psnr(kept['clean'], np.clip(kept[name], 0, 1))[0]:.2f} dB"
        ax.set_title(label)
        ax.axis("off")
    levels = [row["level"] for row in table]
    axes[4].plot(levels, [row["durr_mean_steps"] for row in table], "o-")
    axes[4].set_xlabel("sigma (0..255)" if kind == "sigma" else "JPEG quality")
    axes[4].set_ylabel("mean steps chosen")
    axes[4].set_title("steps chosen vs level")
    fig.suptitle(preset)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--one-pass", help="preset folder of the one-pass CNN (no such row without it)")
    parser.add_argument(
        "--also", help="other DURR presets whose learned stopping is measured, comma-separated"
    )
    parser.add_argument(
        "--images", help="a folder of images to measure on (default: the preset's test split)"
    )
    parser.add_argument("--levels", help="sigmas, or JPEG qualities of a deblocker (default: the card's)")
    parser.add_argument("--seen", help="the training range's levels, for the best fixed step count")
    parser.add_argument("--fixed-max", type=int, default=10, help="fixed step counts 0..N are scored")
    parser.add_argument("--figure-level", type=float, help="level of the figure's crops (default: the 3rd)")
    parser.add_argument("--figure-image", type=int, default=1, help="test image of the figure's crops")
    parser.add_argument("--out")
    parser.add_argument("--figure")
    args = parser.parse_args()

    model = odezoo.load(args.preset)
    one_pass = odezoo.load(args.one_pass) if args.one_pass else None
    others = {f"durr_{name}": odezoo.load(name) for name in (args.also.split(",") if args.also else [])}
    metadata = resolve(args.preset).metadata
    metrics = [m for m in metadata["metrics"] if m["metric"] == "psnr"]
    kind = "quality" if "quality" in metrics[0] else "sigma"
    levels = [float(v) for v in args.levels.split(",")] if args.levels else [m[kind] for m in metrics]
    levels = sorted(levels, reverse=kind == "quality")  # mildest first
    seen = [float(v) for v in args.seen.split(",")] if args.seen else levels
    dataset = args.images or metadata["dataset"]
    ds, count = clean_images(dataset, "test", channels=model.inputs[0].shape[-1])
    images = list(ds.as_numpy_iterator())
    figure_level = args.figure_level if args.figure_level is not None else levels[min(2, len(levels) - 1)]
    table, fixed_by_level, kept, start = [], {}, {}, time.perf_counter()
    for level in levels:
        level = int(level) if kind == "quality" else level
        keep = args.figure_image if level == figure_level else None
        rows, fixed, steps, kept_here = measure(
            model, one_pass, others, images, kind, level, args.fixed_max, keep
        )
        kept = kept_here or kept
        fixed_by_level[level] = [mean_of(pairs) for pairs in fixed]
        table.append({
            "level": level, "seen": level in seen, **{f"{k}": mean_of(v) for k, v in rows.items()},
            **{f"{name}_steps": s for name, s in steps.items()},
            **{f"{name}_mean_steps": float(np.mean(s)) for name, s in steps.items()},
            "best_fixed_steps_here": int(np.argmax([f["psnr"] for f in fixed_by_level[level]])),
        })  # fmt: skip
        table[-1]["best_fixed_here"] = fixed_by_level[level][table[-1]["best_fixed_steps_here"]]
        print(json.dumps(table[-1]), flush=True)
    seen_rows = [row for row in table if row["seen"]]
    best = int(np.argmax([np.mean([fixed_by_level[r["level"]][t]["psnr"] for r in seen_rows])
                          for t in range(args.fixed_max + 1)]))  # fmt: skip
    for row in table:
        row["best_fixed"] = {"steps": best, **fixed_by_level[row["level"]][best]}
    result = {
        "preset": model.name, "dataset": dataset, "split": "test", "images": count, "kind": kind,
        "best_fixed_steps": best, "table": table,
        "fixed": {str(level): rows for level, rows in fixed_by_level.items()},
        "seconds": time.perf_counter() - start,
    }  # fmt: skip
    names = ["degraded", "bm3d", *(["one_pass"] if one_pass else []), "best_fixed", "durr", *others]
    print(f"| {kind} | " + " | ".join(names) + " | steps | best here |\n|" + "---|" * (len(names) + 3))
    for row in table:
        mark = "" if row["seen"] else " (unseen)"
        steps = " / ".join(f"{row[f'{name}_mean_steps']:.1f}" for name in ("durr", *others))
        here = f"{row['best_fixed_steps_here']}, {row['best_fixed_here']['psnr']:.2f}"
        cells = " | ".join(f"{row[k]['psnr']:.2f} / {row[k]['ssim']:.3f}" for k in names)
        print(f"| {row['level']:g}{mark} | {cells} | {steps} | {here} |")
    print(f"best fixed count over the seen levels: {best}; mean PSNR over the seen levels: " + ", ".join(
        f"{k} {np.mean([r[k]['psnr'] for r in seen_rows]):.2f}" for k in names[1:]))  # fmt: skip
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.figure and kept:
        figure(args.figure, kept, figure_level, kind, table, model.name)


def require_bm3d():
    """The BM3D baseline: Tampere University's `bm3d` package, free for non-commercial use only, so
    not a dependency of odezoo; install it yourself to run this benchmark."""
    try:
        import bm3d  # noqa: F401
    except ImportError:
        raise SystemExit(
            "This benchmark compares with BM3D: `pip install bm3d` (Tampere University's package; its "
            "licence allows non-commercial use only, so odezoo does not depend on it)."
        ) from None


if __name__ == "__main__":
    require_bm3d()
    main()
