"""Image restoration: a degraded float image in [0, 1] in, the restored image out; scored by PSNR
against the clean image, here for additive Gaussian noise of standard deviation `sigma / 255`."""

import numpy as np

from odezoo.errors import OdezooError
from odezoo.tasks.base import Option, Task, metric
from odezoo.tasks.image_classification import IMAGE_DATA_OPTIONS, bundled_sample, check_images, read_images

NOISE_SIGMA = 25.0  # default noise level, on the 0..255 scale (the usual denoising benchmark)
PSNR_METRIC = "psnr"


def psnr(clean, restored):
    """Peak signal-to-noise ratio in dB of images in [0, 1], per image: `10 log10(1 / MSE)`."""
    clean, restored = np.asarray(clean, "float64"), np.asarray(restored, "float64")
    mse = np.mean((clean - restored) ** 2, axis=tuple(range(1, clean.ndim)))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


def add_noise(images, sigma, seed):
    """`images + N(0, (sigma / 255)^2)`, clipped to [0, 1], reproducible by `seed`."""
    rng = np.random.default_rng(seed)
    noisy = images + rng.normal(0.0, sigma / 255.0, images.shape)
    return np.clip(noisy, 0.0, 1.0).astype("float32")


class ImageRestoration(Task):
    name = "image_restoration"
    pipeline_tag = "image-to-image"
    description = "a degraded float image in [0, 1] -> the restored image"
    predict_options = (Option("out", "folder for the restored PNG files (default: restored/)"),)
    eval_options = (
        *IMAGE_DATA_OPTIONS,
        Option(
            "sigma", f"Gaussian noise level on the 0..255 scale (default {NOISE_SIGMA:g})", float, minimum=0
        ),
        Option("seed", "seed of the noise", int, minimum=0),
    )

    def check_inputs(self, model, x):
        return check_images(model, x)

    def predict(self, model, metadata, inputs, *, out="restored"):
        """Restores image files and writes each as `<out>/<name>.png`."""
        from pathlib import Path

        import tensorflow as tf

        if not inputs:
            raise OdezooError(f"Give image files to restore: `odezoo predict {model.name} noisy.png`.")
        images = read_images(inputs, tuple(model.inputs[0].shape[1:]))
        restored = np.clip(model.predict(images, verbose=0), 0.0, 1.0)
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for path, image in zip(inputs, restored):
            target = folder / f"{Path(path).stem}.png"
            tf.io.write_file(str(target), tf.io.encode_png(np.round(image * 255).astype("uint8")))
            results.append({"input": str(path), "output": str(target)})
        return results

    def evaluate(
        self, model, metadata, *, dataset=None, split="test", limit=0, batch_size=64, data_dir=None,
        sigma=NOISE_SIGMA, seed=0,
    ):  # fmt: skip
        """Mean PSNR of the noisy and of the restored images against the clean ones."""
        from odezoo.data.images import image_dataset

        dataset = dataset or metadata.get("dataset")
        if not dataset:
            raise OdezooError(f"{model.name} does not record its data set; pass --dataset.")
        ds, count = image_dataset(dataset, split, batch_size=batch_size, limit=limit, data_dir=data_dir)
        noisy_psnr, restored_psnr = [], []
        for index, (images, _) in enumerate(ds):
            clean = np.asarray(images)
            noisy = add_noise(clean, sigma, seed + index)
            restored = np.asarray(model(check_images(model, noisy), training=False))
            noisy_psnr.append(psnr(clean, noisy))
            restored_psnr.append(psnr(clean, np.clip(restored, 0.0, 1.0)))
        return {
            "dataset": dataset,
            "split": split,
            "num_examples": count,
            "sigma": sigma,
            "noisy_psnr": float(np.mean(np.concatenate(noisy_psnr))),
            PSNR_METRIC: float(np.mean(np.concatenate(restored_psnr))),
        }

    def headline(self, metadata):
        m = metric(metadata, PSNR_METRIC)
        return "—" if m is None else f"{m['value']:.2f} dB PSNR ({m['split']}, sigma {m.get('sigma', '?')})"

    def sample_inputs(self, model, metadata, count=32):
        shape = tuple(model.inputs[0].shape[1:])
        images, _ = bundled_sample(count)
        clean = images if images.shape[1:] == shape else super().sample_inputs(model, metadata, count)
        return add_noise(clean, NOISE_SIGMA, 0)

    def agreement(self, expected, actual, fmt):
        """Max |difference| of the restored images, and the PSNR of the artifact's output against Keras'."""
        diff = float(np.max(np.abs(actual - expected)))
        tolerance = {"float16": 1e-2, "dynamic": 5e-2, "int8": 0.1}.get(fmt, 1e-4)
        fields = {
            "max_abs_diff": diff,
            "tolerance": tolerance,
            "psnr_vs_keras": float(np.min(psnr(expected, actual))),
        }
        return (
            fields,
            None if diff <= tolerance else f"differs from Keras by {diff:.3g} (tolerance {tolerance:g})",
        )

    def golden(self, model, stored):
        return model.predict(stored["inputs"], verbose=0), stored["outputs"]

    def card_quotes(self, metadata):
        return [f"{metric(metadata, PSNR_METRIC)['value']:.2f}", *super().card_quotes(metadata)]

    def spot_checks(self, model, metadata):
        """The 1,000 bundled test images with the card's noise: restored PSNR within 1 dB of the card's."""
        card = metric(metadata, PSNR_METRIC)
        result = self.evaluate(model, metadata, split="sample", sigma=card.get("sigma", NOISE_SIGMA))
        return [
            (f"sample PSNR {result[PSNR_METRIC]:.2f} vs card {card['value']:.2f}",
             abs(result[PSNR_METRIC] - card["value"]) < 1.0),
            ("restoring beats the noisy input", result[PSNR_METRIC] > result["noisy_psnr"]),
        ]  # fmt: skip
