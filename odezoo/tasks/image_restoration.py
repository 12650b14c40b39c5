"""Image restoration: a degraded float image on the [0, 1] scale in, the restored image out; scored
by PSNR against the clean image, for additive Gaussian noise of standard deviation `sigma / 255`
(not clipped) or JPEG compression at a quality (`odezoo.data.restoration`).

The task restores through its hook `restore(model, images, max_steps=, steps=)`, returning
`(restored images, steps taken per image or None)`: here one `model.predict`, a fixed depth. A family
whose models choose their depth per image overrides it in its subclass (in the family's folder), and
`predict` and `evaluate` report the steps it returns.
"""

import os
import warnings
from pathlib import Path

import numpy as np

from odezoo._files import check_folder, check_output, write_output
from odezoo.data.images import read_image
from odezoo.data.restoration import add_noise, check_degradation, clean_images, degrade
from odezoo.errors import OdezooError, OdezooWarning
from odezoo.tasks.base import Option, Task, limit_note, metric
from odezoo.tasks.image_classification import (
    IMAGE_DATA_OPTIONS,
    IMAGE_SUFFIXES,
    bundled_sample,
    check_image_inputs,
    image_files,
    read_images,
)

NOISE_SIGMA = 25.0  # default noise level, on the 0..255 scale (the usual denoising benchmark)
PSNR_METRIC = "psnr"
# How far outside [0, 1] a degraded input may go: unclipped noise of sigma = 75 reaches 2 in about
# one pixel in 1e11, while an image on the 0..255 scale is refused.
OVERSHOOT = 2.0
MAX_SIGMA = 75.0  # the strongest noise an evaluation adds: beyond it, inputs leave the OVERSHOOT margin
MAX_STEPS_OPTION = Option("max_steps", "cap on the steps of a model that chooses its depth", int, minimum=0)
# Largest PSNR loss in dB of a quantised export's restoration (against the clean sample images), per
# quantisation; where the sample has no clean images, the least PSNR against Keras' restoration.
QUANTIZED_PSNR_LOSS = {"float16": 0.05, "dynamic": 0.5, "int8": 1.0}
MIN_PSNR_VS_KERAS = 40.0
STEPS_OPTION = Option(
    "steps", "restoration steps: a fixed depth instead of the model's own choice", int, minimum=0
)


def psnr(clean, restored):
    """Peak signal-to-noise ratio in dB of images in [0, 1], per image: `10 log10(1 / MSE)`."""
    clean, restored = np.asarray(clean, "float64"), np.asarray(restored, "float64")
    mse = np.mean((clean - restored) ** 2, axis=tuple(range(1, clean.ndim)))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


def sample_clean(shape, count):
    """The clean images of the export samples: the first `count` bundled Fashion-MNIST images, in `shape`'s
    channels where its height and width are free (`None`); `None` where they do not fit `shape`."""
    images, _ = bundled_sample(count)
    if tuple(shape[:2]) == (None, None):
        return np.repeat(images, shape[-1], axis=-1)
    return images if images.shape[1:] == tuple(shape) else None


def psnr_loss(expected, actual, tolerance):
    """How many dB lower the mean PSNR of the restored images `actual` is than that of Keras' `expected`,
    both against the clean sample images (`sample_clean`): `(fields, problem or None)`. Where there are
    none, the PSNR of `actual` against `expected` must reach `MIN_PSNR_VS_KERAS`."""
    against_keras = float(np.min(psnr(expected, actual)))
    clean = sample_clean((None, None, expected.shape[-1]), len(expected))
    if clean.shape != expected.shape:
        fields = {"measure": "psnr_vs_keras", "psnr_vs_keras": against_keras, "tolerance": MIN_PSNR_VS_KERAS}
        ok = against_keras >= MIN_PSNR_VS_KERAS
        return fields, None if ok else f"has a PSNR of {against_keras:.1f} dB against Keras (needed: 40 dB)"
    loss = float(np.mean(psnr(clean, expected)) - np.mean(psnr(clean, actual)))
    fields = {"measure": "psnr_loss_db", "psnr_loss_db": loss, "tolerance": tolerance}
    fields["psnr_vs_keras"] = against_keras
    problem = None if loss <= tolerance else f"loses {loss:.3g} dB of PSNR (tolerance {tolerance:g} dB)"
    return fields, problem


def ssim(clean, restored):
    """Structural similarity of images in [0, 1], per image (`tf.image.ssim`: 11x11 Gaussian window
    of sigma 1.5, the constants of Wang et al. 2004; colour images averaged over channels)."""
    import tensorflow as tf  # deferred: heavy; the CLI reads task modules before TensorFlow starts

    clean, restored = tf.constant(clean, tf.float32), tf.constant(restored, tf.float32)
    return tf.image.ssim(clean, restored, max_val=1.0).numpy()


def check_noise_scale(sigma):
    """Raises where a noise level `sigma` (on the 0..255 scale) is one an evaluation cannot mean: below
    one grey level (0 < sigma < 1: likely given on the [0, 1] scale) or above `MAX_SIGMA`."""
    if sigma is not None and 0 < sigma < 1:
        raise OdezooError(
            f"--sigma is on the 0..255 scale; {sigma:g} is less than one grey level of an 8-bit image. For "
            f"{sigma:g} on the [0, 1] scale, pass --sigma {sigma * 255:g}. Received: --sigma {sigma:g}"
        )
    if sigma is not None and sigma > MAX_SIGMA:
        raise OdezooError(
            f"--sigma {sigma:g} is above {MAX_SIGMA:g} (the 0..255 scale): unclipped noise that strong "
            f"leaves [0, 1] by more than the {OVERSHOOT:g} restoration inputs may. Give 0..{MAX_SIGMA:g}."
        )


def own_degradation(metadata):
    """`{"sigma": ...}` or `{"quality": ...}`: the degradation the preset restores, what `odezoo eval`
    scores without `--sigma` / `--quality`: its `degradation` entry (which a saved copy inherits), else
    the level of its headline PSNR (its card's first), or `{}` where none is recorded."""
    card = metadata.get("degradation") or metric(metadata, PSNR_METRIC) or {}
    return {key: card[key] for key in ("quality", "sigma") if key in card}


def output_names(paths):
    """Distinct relative names `<stem>.png` for the restored images of `paths`: where two stems meet
    (`a/photo.png`, `b/photo.png`), every name keeps its folder below the inputs' common folder, and
    where only their suffixes differ (`photo.png`, `photo.jpg`), its suffix too (`photo.jpg.png`)."""
    paths = [Path(os.path.abspath(path)) for path in paths]
    names = [Path(f"{path.stem}.png") for path in paths]
    if len(set(names)) < len(names):
        common = Path(os.path.commonpath([path.parent for path in paths]))
        names = [path.parent.relative_to(common) / name for path, name in zip(paths, names)]
    if len(set(names)) < len(names):
        names = [name.with_name(f"{path.name}.png") for path, name in zip(paths, names)]
    if len(set(names)) < len(names):
        twice = next(str(path) for path in paths if paths.count(path) > 1)
        raise OdezooError(f"{twice} is given twice; give each image once.")
    return names


class ImageRestoration(Task):
    """Restoration by a model of a fixed depth. A family whose models choose their depth subclasses
    it and overrides `restore` (and `check_inputs`, `export_parts` where its models need more)."""

    name = "image_restoration"
    pipeline_tag = "image-to-image"
    description = "a degraded float image in [0, 1] -> the restored image"
    writes_files = True
    predict_options = (
        Option("out", "folder for the restored PNG files (default: restored/), or a .png file for one image"),
        MAX_STEPS_OPTION,
        STEPS_OPTION,
    )
    eval_options = (
        *IMAGE_DATA_OPTIONS,
        Option(
            "sigma",
            "Gaussian noise level on the 0..255 scale (default: the preset's own degradation, that of its "
            f"headline PSNR; {NOISE_SIGMA:g} where it records none)",
            float,
            minimum=0,
        ),
        Option(
            "quality",
            "JPEG quality 1..100: evaluate deblocking instead of denoising (default: see --sigma)",
            int,
            minimum=1,
        ),
        Option("seed", "seed of the noise", int, minimum=0),
        MAX_STEPS_OPTION,
        STEPS_OPTION,
    )

    def restore(self, model, images, *, max_steps=None, steps=None):
        """`(restored images, steps taken per image or None)`: what `predict` and `evaluate` run. Here
        `model.predict`, a fixed depth, so `max_steps` and `steps` (a cap on the depth a model chooses,
        or a depth fixed instead of its choice) are refused."""
        for flag, value in (("--max-steps", max_steps), ("--steps", steps)):
            if value is not None:
                raise OdezooError(
                    f"{flag} applies to models that choose their depth; {model.name} has a fixed one."
                )
        return model.predict(images, verbose=0), None

    def check_inputs(self, model, x):
        """Float images of the model's channels in [0, 1], which degraded images may overshoot by
        `OVERSHOOT` (unclipped noise)."""
        return check_image_inputs(model, x, overshoot=OVERSHOOT)

    def predict(
        self, model, metadata, inputs, *, out="restored", max_steps=None, steps=None, overwrite=False
    ):
        """Restores image files (a folder: its image files) and writes each as `<out>/<name>.png`
        (`output_names`: distinct names), or as the file `out` itself when it has an image suffix and
        one image is given (with the steps taken, for a model that chooses its depth). An existing file
        is replaced only with `overwrite`, an input file never; each is written whole or not at all."""

        import tensorflow as tf  # deferred: heavy; the CLI reads task modules before TensorFlow starts

        if not inputs:
            raise OdezooError(f"Give image files to restore: `odezoo predict {model.name} noisy.png`.")
        inputs = image_files(inputs)
        suffix = Path(out).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            if suffix != ".png":
                raise OdezooError(
                    f"--out {out} names a {suffix[1:].upper()} file, but restored images are written as "
                    "PNG (lossless): give a .png file, or a folder."
                )
            if len(inputs) != 1:
                raise OdezooError(
                    f"--out {out} names one file but {len(inputs)} images were given; give a folder for "
                    "several images."
                )
            targets = [Path(out)]
        else:
            check_folder(out, "--out")
            targets = [Path(out) / name for name in output_names(inputs)]
        sources = {Path(path).resolve() for path in inputs}
        clash = next((t for t in targets if t.resolve() in sources), None)
        if clash is not None:
            raise OdezooError(
                f"Writing {clash} would overwrite an input image; choose another --out (a folder or a file)."
            )
        for target in targets:
            check_output(target, overwrite, "--out" if target == Path(out) else "Output", "PNG file")
        shape = tuple(model.inputs[0].shape[1:])
        fixed = None not in shape[:2]
        images = (
            read_images(inputs, shape) if fixed else [read_image(path, shape[-1])[None] for path in inputs]
        )
        results = []
        for path, image, target in zip(inputs, images, targets):
            restored, taken = self.restore(
                model, image[None] if fixed else image, max_steps=max_steps, steps=steps
            )
            pixels = np.round(np.clip(restored[0], 0.0, 1.0) * 255).astype("uint8")
            png = tf.io.encode_png(pixels).numpy()
            done = f"; {len(results)} of {len(inputs)} image(s) were written before it"
            write_output(target, lambda f: f.write(png), done=done)
            results.append({"input": str(path), "output": str(target)})
            if taken is not None:
                results[-1]["steps"] = int(taken[0])
        return results

    def evaluate(
        self, model, metadata, *, dataset=None, split="test", limit=0, batch_size=64, data_dir=None,
        sigma=None, quality=None, seed=0, max_steps=None, steps=None,
    ):  # fmt: skip
        """Mean PSNR of the degraded and of the restored images against the clean ones, the restored
        images' mean SSIM (and the mean steps taken, for a model that chooses its depth). Without `sigma`
        and `quality`, the preset's own degradation (`own_degradation`), else noise of `NOISE_SIGMA`."""

        dataset = dataset or metadata.get("dataset")
        if not dataset:
            raise OdezooError(f"{model.name} does not record its data set; pass --dataset.")
        if sigma is not None and quality is not None:
            raise OdezooError(
                f"Give --sigma (noise) or --quality (JPEG), not both. Received: {sigma}, {quality}"
            )
        if sigma is None and quality is None:
            level = own_degradation(metadata) or {"sigma": NOISE_SIGMA}
        else:
            level = {"quality": quality} if quality is not None else {"sigma": sigma}
        check_degradation(**level)
        check_noise_scale(level.get("sigma"))
        channels = model.inputs[0].shape[-1]
        ds, count = clean_images(dataset, split, channels=channels, limit=limit, data_dir=data_dir)
        fixed = ds.element_spec.shape.is_fully_defined()
        degraded_psnr, restored_psnr, restored_ssim, all_steps = [], [], [], []
        for index, images in enumerate(ds.batch(batch_size if fixed else 1).as_numpy_iterator()):
            degraded = degrade(images, **level, seed=seed + index)
            with warnings.catch_warnings():  # a depth's cap met on some images: `mean_steps` says it
                warnings.simplefilter("ignore", OdezooWarning)
                restored, taken = self.restore(
                    model, self.check_inputs(model, degraded), max_steps=max_steps, steps=steps
                )
            degraded_psnr.append(psnr(images, degraded))
            restored = np.clip(restored, 0.0, 1.0)
            restored_psnr.append(psnr(images, restored))
            restored_ssim.append(ssim(images, restored))
            all_steps.append([] if taken is None else taken)
        result = {
            "dataset": dataset,
            "split": split,
            "num_examples": count,
            **limit_note(limit, count),
            **level,
            "degraded_psnr": float(np.mean(np.concatenate(degraded_psnr))),
            PSNR_METRIC: float(np.mean(np.concatenate(restored_psnr))),
            "ssim": float(np.mean(np.concatenate(restored_ssim))),
        }
        steps = np.concatenate(all_steps)
        return {**result, "mean_steps": float(np.mean(steps))} if len(steps) else result

    def headline(self, metadata):
        m = metric(metadata, PSNR_METRIC)
        if m is None:
            return "—"
        level = f"JPEG quality {m['quality']}" if "quality" in m else f"sigma {m.get('sigma', '?'):g}"
        return f"{m['value']:.2f} dB PSNR ({m['split']}, {level})"

    def sample_inputs(self, model, metadata, count=32):
        """Bundled Fashion-MNIST images (in the model's channels where its height and width are free)
        with noise of sigma 25; uniform noise where they do not fit."""
        images = sample_clean(tuple(model.inputs[0].shape[1:]), count)
        if images is None:
            images = super().sample_inputs(model, metadata, count)
        return add_noise(images, NOISE_SIGMA, 0)

    def agreement(self, expected, actual, fmt):
        """Max |difference| of the restored images, and the PSNR of the artifact's output against Keras'."""
        diff = float(np.max(np.abs(actual - expected)))
        tolerance = 1e-4  # float exports; quantised ones: `quantized_agreement`
        fields = {
            "max_abs_diff": diff,
            "tolerance": tolerance,
            "psnr_vs_keras": float(np.min(psnr(expected, actual))),
        }
        return (
            fields,
            None if diff <= tolerance else f"differs from Keras by {diff:.3g} (tolerance {tolerance:g})",
        )

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """The PSNR loss in dB (`psnr_loss`) of the quantised restoration, at most
        `QUANTIZED_PSNR_LOSS[quantize]`."""
        return psnr_loss(expected, actual, QUANTIZED_PSNR_LOSS[quantize])

    def golden(self, model, stored):
        return model.predict(stored["inputs"], verbose=0), stored["outputs"]

    def card_quotes(self, metadata):
        return [f"{metric(metadata, PSNR_METRIC)['value']:.2f}", *super().card_quotes(metadata)]

    slow_spot_checks = True  # a full-size photograph restored at up to `max_steps` steps per image

    def spot_checks(self, model, metadata):
        """The card's headline evaluation run again (its data set, split and degradation: offline for
        the bundled photographs): PSNR within 0.05 dB of the card's, and better than the degraded input."""
        card = metric(metadata, PSNR_METRIC)
        level = {k: card[k] for k in ("sigma", "quality") if k in card}
        result = self.evaluate(model, metadata, dataset=card["dataset"], split=card["split"], **level)
        return [
            (f"{card['split']} PSNR {result[PSNR_METRIC]:.3f} vs card {card['value']:.3f}",
             abs(result[PSNR_METRIC] - card["value"]) < 0.05),
            ("restoring beats the degraded input", result[PSNR_METRIC] > result["degraded_psnr"]),
        ]  # fmt: skip
