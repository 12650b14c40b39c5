"""DURR's image restoration: the generic task (`odezoo.tasks.image_restoration`) for a model that
chooses its depth per image, refuses images smaller than one step's receptive field, and exports its
step and its policy-driven loop."""

from odezoo.errors import OdezooError
from odezoo.tasks.base import share_agreeing
from odezoo.tasks.image_restoration import ImageRestoration

# Least share of sample images for which a quantised restore loop stops after as many steps as Keras'.
QUANTIZED_STEPS_AGREEMENT = {"float16": 0.95, "dynamic": 0.8, "int8": 0.7}


class DURRRestoration(ImageRestoration):
    """Image restoration by `DURR`: `restore` acts with the policy (`DURR.restore`), so `predict` and
    `evaluate` take `--max-steps` and `--steps` and report the steps taken."""

    def restore(self, model, images, *, max_steps=None, steps=None):
        return model.restore(images, max_steps=max_steps, steps=steps)

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
