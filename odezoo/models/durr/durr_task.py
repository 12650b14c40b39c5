"""DURR's image restoration: the generic task (`odezoo.tasks.image_restoration`) for a model that
chooses its depth per image, refuses images smaller than one step's receptive field, and exports its
step and its policy-driven loop."""

import sys
import time

import numpy as np

from odezoo.errors import OdezooError
from odezoo.tasks.base import share_agreeing
from odezoo.tasks.image_restoration import ImageRestoration

# An image restored in tiles for longer than this (seconds, as its first tile predicts) is announced with
# its expected time before the restoration goes on.
LONG_SECONDS = 30.0
# Least share of sample images for which a quantised restore loop stops after as many steps as Keras'.
QUANTIZED_STEPS_AGREEMENT = {"float16": 0.95, "dynamic": 0.8, "int8": 0.7}


class DURRRestoration(ImageRestoration):
    """Image restoration by `DURR`: `restore` acts with the policy (`DURR.restore`), so `predict` and
    `evaluate` take `--max-steps` and `--steps` and report the steps taken."""

    unexportable = {
        "tflite+int8": "the TFLite converter (TensorFlow 2.21) crashes with a segmentation fault while "
        "calibrating DURR's restoration graph for int8; use --quantize dynamic or float16",
    }

    def restore(self, model, images, *, max_steps=None, steps=None):
        """`model.restore`; an image restored in tiles shows a progress bar of its tiles and steps on a
        terminal and, where the restoration will take longer than `LONG_SECONDS` (timed on its first
        tile), a line on stderr with the expected time before it goes on."""
        from tqdm.auto import tqdm  # deferred: start-up

        bar, start = None, time.monotonic()

        def progress(step, cap, tile, tiles):
            nonlocal bar
            if bar is None:
                expected = (time.monotonic() - start) * tiles * cap
                if expected > LONG_SECONDS:
                    height, width = np.shape(images)[1:3]
                    tqdm.write(
                        f"{model.name}: restoring {height}x{width} pixels in {tiles} tiles, up to {cap} "
                        f"steps, takes up to about {_duration(expected)} here (timed on the first tile).",
                        file=sys.stderr,
                    )
                bar = tqdm(total=tiles * cap, desc=f"{model.name} (tiles x steps)", unit="tile", disable=None)
            bar.update((step - 1) * tiles + tile - bar.n)

        try:
            return model.restore(images, max_steps=max_steps, steps=steps, progress=progress)
        finally:
            if bar is not None:
                bar.close()

    def check_inputs(self, model, x):
        x = super().check_inputs(model, x)
        least, (height, width) = model.min_image_size, x.shape[1:3]
        if min(height, width) < least:
            raise OdezooError(
                f"{model.name} needs images of at least {least}x{least} pixels (the receptive field of one "
                f"step); received {height}x{width}. Give larger images."
            )
        return x

    def export_parts(self, model, metadata, quantize=None):
        """`step` (`step_model`: one step `(x, x0) -> x_next`, to run in a loop of one's own) and
        `restore` (`restore_model`: the whole policy-driven loop in the graph, `x0 -> (restored, steps)`)."""
        sample = self.sample_inputs(model, metadata)
        step, restore = model.step_model(), model.restore_model()
        return {"step": (step, step, {"x": sample, "x0": sample}), "restore": (restore, restore, sample)}

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """The restored images' PSNR loss (the task's); for the restore loop's step counts, the share of
        images that stop after as many steps as in Keras (`QUANTIZED_STEPS_AGREEMENT`)."""
        if part == "restore" and output == 1:
            return share_agreeing(expected, actual, QUANTIZED_STEPS_AGREEMENT[quantize], "steps_agreement")
        return super().quantized_agreement(expected, actual, quantize, part=part, output=output)


def _duration(seconds):
    """`seconds` as `"45 s"`, `"12 min"` or `"1 h 10 min"`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
