"""DURR restoration time per megapixel against BM3D on the same CPU, in one process, and how DURR's time
grows with the number of steps.

    python bench/durr_speed.py [durr_denoise_gray] [--size 512] [--sigma 25] [--repeats 3]
        [--out bench/results/durr_speed_cpu.json]

On one noisy `--size` x `--size` grey image (the `camera` photograph of scikit-image, cropped):
- DURR with a fixed number of steps, 1, 2, 4 and 8 (`DURR.restore(steps=n)`: the unit alone), which
  gives the cost of one step and of asking the policy;
- DURR with its learned stopping (`DURR.restore`), and the steps it chose;
- BM3D (`bm3d.bm3d`, given the true sigma), the same image.
Each is warmed up once and timed `--repeats` times, interleaved; the median is reported as seconds per
megapixel, with DURR's ratio to BM3D. Threads are TensorFlow's and BM3D's defaults on this machine.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from durr_quality import require_bm3d  # noqa: E402

import odezoo  # noqa: E402
from odezoo.data.restoration import add_noise  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", nargs="?", default="durr_denoise_gray")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()

    import bm3d
    import skimage.data

    model = odezoo.load(args.preset)
    clean = skimage.data.camera()[: args.size, : args.size].astype("float32")[None, ..., None] / 255.0
    noisy = add_noise(clean, args.sigma, 0)
    chosen = {}

    def learned():
        chosen["steps"] = int(model.restore(noisy)[1][0])

    variants = {f"durr_{n}_steps": (lambda n=n: model.restore(noisy, steps=n)) for n in (1, 2, 4, 8)}
    variants["durr_learned_stop"] = learned
    variants["bm3d"] = lambda: bm3d.bm3d(noisy[0, ..., 0], sigma_psd=args.sigma / 255.0)
    for run in variants.values():
        run()  # warm-up: tracing, caches
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    megapixels = args.size**2 / 1e6
    per_mp = {name: statistics.median(t) / megapixels for name, t in times.items()}
    steps = np.array([1, 2, 4, 8])
    slope, intercept = np.polyfit(steps, [per_mp[f"durr_{n}_steps"] for n in steps], 1)
    result = {
        "preset": args.preset,
        "image": f"camera {args.size}x{args.size}, sigma {args.sigma:g}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "seconds_per_megapixel": per_mp,
        "durr_seconds_per_step_per_megapixel": float(slope),
        "durr_fixed_cost_per_megapixel": float(intercept),
        "durr_learned_steps": chosen["steps"],
        "ratio_durr_learned_to_bm3d": per_mp["durr_learned_stop"] / per_mp["bm3d"],
        "repeats": args.repeats,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    require_bm3d()
    main()
