"""A DURR stopping policy on its own validation photographs (never the test photographs): per noise
level and photograph, the best fixed step count and its PSNR, the step the policy stops at and its PSNR,
and the policy's advantage `q_continue - q_stop` at each step of the trajectory.

    python bench/durr_policy_validation.py PRESET_OR_FOLDER [--data sklearn_photos] [--levels 15,25,50]

The photographs are the `train` split of `--data` (for `sklearn_photos`: scikit-learn's china and flower,
which the policy of `--set policy_data=sklearn_photos` trains on and the unit never saw), in grey, with
noise seeded apart from the test's (seed 100 + image index). This is where a policy's settings may be
chosen; the test photographs of `bench/durr_quality.py` stay out of every choice. Ends with the mean gap,
in dB, between the policy's stop and each image's best count.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import odezoo  # noqa: E402
from odezoo.data.restoration import clean_images, degrade  # noqa: E402
from odezoo.models.durr.durr_layers import policy_values  # noqa: E402
from odezoo.tasks.image_restoration import psnr  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a DURR preset name or folder")
    parser.add_argument("--data", default="sklearn_photos", help="data set whose train split is validated on")
    parser.add_argument("--levels", default="15,25,50", help="noise levels, 0..255 scale")
    args = parser.parse_args()

    model = odezoo.load(args.preset)
    images, _ = clean_images(args.data, "train", channels=model.channels)
    gaps = []
    for sigma in (float(s) for s in args.levels.split(",")):
        for i, image in enumerate(images.as_numpy_iterator()):
            clean = image[None]
            x0 = model.check_inputs(degrade(clean, sigma=sigma, seed=100 + i))
            x, quality, advantage = x0, [], []
            for _ in range(model.max_steps + 1):
                quality.append(float(psnr(clean, np.clip(x, 0, 1))[0]))
                q = np.asarray(policy_values(model.policy, x, x0, model.policy_tile))[0]
                advantage.append(q[1] - q[0])
                x = np.asarray(model.unit(x, x0))
            stop = next((t for t, a in enumerate(advantage) if a <= 0), model.max_steps)
            best = int(np.argmax(quality))
            gaps.append(quality[stop] - quality[best])
            print(
                f"sigma {sigma:g} image {i}: best {best} steps {quality[best]:.2f} dB | policy {stop} steps "
                f"{quality[stop]:.2f} dB | q_continue - q_stop " + " ".join(f"{a:+.3f}" for a in advantage),
                flush=True,
            )
    print(f"mean gap to each image's best count: {np.mean(gaps):+.3f} dB over {len(gaps)} images")


if __name__ == "__main__":
    main()
