"""PDE rollout: a field `(batch, grid, grid, channels)` on a periodic grid in, the field one time
step later out; scored by coefficient recovery and rollout error on fresh simulated trajectories.

Axes: x runs along axis 2 (the columns), y along axis 1 (the rows), so `u[b, j, i, c]` is the value
at `(x_i, y_j)`. Fields built with `np.meshgrid(x, y)` (the default `indexing="xy"`) follow this
convention; `indexing="ij"` gives the transpose.
"""

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from odezoo.errors import OdezooError
from odezoo.tasks.base import Option, Task, metric, relative_error

# A float64 PDE model's one-step map is exported in float32: allowed max |difference| relative to the
# largest |value| of the Keras (float64) output.
FIELD_TOLERANCE = 1e-5
# The same relative field error for a quantised TFLite export, per quantisation.
QUANTIZED_FIELD_TOLERANCES = {"float16": 1e-3, "dynamic": 2e-2}
ROLLOUT_METRIC = "median relative error, t=1"


class FieldModel(Protocol):
    """What `PDERollout` reads off a model, besides a Keras model's `name` and `inputs`."""

    grid: int  # points per axis of the square grid the model was trained on
    channels: Sequence[str]  # the names of the fields, one per channel
    periodic: bool  # whether the grid is periodic (then the input check looks across the boundary)


class PDERollout(Task):
    """A field in, the field one time step later out (the module docstring).

    Models: a `FieldModel`. A family's subclass adds what needs its simulator or its models' methods
    (the evaluation, export sample inputs, golden and spot checks). Metadata: `metrics` holds
    `ROLLOUT_METRIC` (the headline), and `pde_report` the evaluation the card quotes
    (`rollout_relative_error` per time, `max_relative_error`, `largest_spurious`).
    """

    name = "pde_rollout"
    pipeline_tag = "time-series-forecasting"
    description = "a field on a periodic grid -> the field one time step later"
    eval_options = (
        Option("trajectories", "fresh trajectories to simulate", int, minimum=1),
        Option("seed", "seed of the evaluation data (fresh trajectories, noise)", int, minimum=0),
    )

    def check_inputs(self, model, x):
        return check_fields(model, x, "inputs")

    def predict(self, model, metadata, inputs, **options):
        raise OdezooError(
            f"{model.name} is a PDE model, not an image classifier: `odezoo eval {model.name}` scores it "
            "on fresh trajectories, and `odezoo.load(name).rollout(u0, steps)` predicts from a field."
        )

    def headline(self, metadata):
        m = metric(metadata, ROLLOUT_METRIC)
        return "—" if m is None else f"{m['value']:.2%} median rollout error at t = 1"

    def agreement(self, expected, actual, fmt):
        diff = float(np.max(np.abs(actual - expected)))
        relative = diff / float(np.max(np.abs(expected)))
        report = {
            "max_abs_diff": diff,
            "max_rel_diff": relative,
            "compared_with": "float64 Keras model",
            "tolerance": FIELD_TOLERANCE,
            "top1_agreement": None,
        }
        if relative <= FIELD_TOLERANCE:
            return report, None
        return report, f"differs from the float64 model by {relative:.3g} of the largest value " + (
            f"(tolerance {FIELD_TOLERANCE:g})"
        )

    unexportable = {
        "tflite+int8": "8-bit activations cannot hold a field to the relative precision a rollout needs "
        "(1e-5 in float32); use --quantize float16 or dynamic",
    }

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """Relative field error against the float64 model, at most `QUANTIZED_FIELD_TOLERANCES[quantize]`."""
        fields, problem = relative_error(expected, actual, QUANTIZED_FIELD_TOLERANCES[quantize])
        return {**fields, "compared_with": "float64 Keras model"}, problem

    def card_quotes(self, metadata):
        report = metadata["pde_report"]
        return [
            *(f"{stats['median']:.2%}" for stats in report["rollout_relative_error"].values()),
            f"{report['max_relative_error']:.2%}",
            f"{abs(report['largest_spurious']['value']):.1e}",
            *super().card_quotes(metadata),
        ]


def check_fields(model: FieldModel, u, what="u0"):
    """Returns `u` as an array after the checks every PDE model needs; raises `OdezooError` otherwise."""
    grid, channels = model.grid, len(model.channels)
    arr = np.asarray(u)
    want = f"(batch, {grid}, {grid}, {channels})"
    if arr.dtype.kind not in "fiu":
        raise OdezooError(
            f"{model.name} expects a float array {want} for {what}; received dtype {arr.dtype}."
        )
    if arr.ndim == 3 and channels == 1 and arr.shape[1:] == (grid, grid):
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[1:] != (grid, grid, channels):
        fix = _layout_fix(model, arr.shape)
        raise OdezooError(f"{model.name} expects {what} of shape {want}; received {tuple(arr.shape)}.{fix}")
    if not len(arr):
        raise OdezooError(f"{model.name} received an empty batch (0 fields of shape {want}) for {what}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise OdezooError(
            f"{what} holds {int(bad.sum())} NaN/inf values (first at index {tuple(np.argwhere(bad)[0])}); "
            "remove or repair those samples."
        )
    if model.periodic and arr.size:
        inner = np.abs(np.diff(arr, axis=1)).max(), np.abs(np.diff(arr, axis=2)).max()
        wrap = np.abs(arr[:, 0] - arr[:, -1]).max(), np.abs(arr[:, :, 0] - arr[:, :, -1]).max()
        for axis in (0, 1):
            if wrap[axis] > 4 * inner[axis] + 1e-12:
                raise OdezooError(
                    f"{what} does not look periodic: along axis {axis} the jump across the boundary is "
                    f"{wrap[axis]:.3g}, while neighbouring points differ by at most {inner[axis]:.3g}. "
                    f"{model.name} assumes a periodic field on [0, 2 pi)^2 (the last point is not a copy of "
                    "the first)."
                )
    return arr.astype(model.inputs[0].dtype)


def _layout_fix(model: FieldModel, shape):
    """What to do to fields of `shape` for `model`, which takes `(batch, y, x, channels)`: the layout
    received where it is another (a trajectory, channels first) and how to get the expected one, else
    the size or channels that differ."""
    grid, channels, names = model.grid, len(model.channels), ", ".join(model.channels)
    square = (grid, grid)
    if len(shape) == 5 and shape[2:] == (*square, channels):
        return (
            " That is a trajectory (batch, time, y, x, channels); a rollout starts from one field per "
            "sample: pass u[:, 0] (the first time)."
        )
    if len(shape) == 4 and shape[2:] == square and shape[1] == channels:
        return (
            " That is channels first (batch, channels, y, x); the model takes them last (batch, y, x, "
            "channels): pass np.moveaxis(u, 1, -1)."
        )
    if len(shape) == 4 and shape[2:] == square and channels == 1:
        return (
            " That is a trajectory (batch, time, y, x) or channels first; the model takes (batch, y, x, 1): "
            "pass u[:, 0, ..., None] (the first time)."
        )
    if len(shape) == 3 and shape == (*square, channels):
        return " Add a batch axis: u[None]."
    if len(shape) == 3 and shape == (channels, *square):
        return " That is one field, channels first (channels, y, x): pass np.moveaxis(u, 0, -1)[None]."
    if len(shape) == 4 and shape[1] != shape[2]:
        return f" The field is not square; {model.name} is periodic on a square {grid} x {grid} grid."
    if len(shape) == 4 and shape[1] != grid:
        return (
            f" The grid is {shape[1]} x {shape[2]}; this model was trained on {grid} x {grid} "
            f"(h = 2 pi / {grid}): resample the field or simulate at that resolution."
        )
    if len(shape) == 4:
        return f" The last axis holds the channels, {names} ({channels}); received {shape[-1]}."
    return f" The model takes 4-D fields (batch, y, x, channels: {names}); received {len(shape)}-D."
