"""PDE-Net's part of the `pde_rollout` task: its evaluation, export sample, golden and spot checks.

The generic task (`odezoo.tasks.pde_rollout.PDERollout`) holds the input contract and what any field
model shares; what runs the PDE-Net simulator or evaluation lives here. Imports only NumPy and
odezoo's tasks at the top, as task modules do.
"""

import numpy as np

from odezoo.tasks.pde_rollout import PDERollout


class PDENetRollout(PDERollout):
    """`pde_rollout` for the PDE-Net models: scored on fresh trajectories of `metadata["equation"]`
    (`odezoo.data.pde.simulate`), exported in float32.

    Besides `PDERollout`'s `FieldModel`, the model provides `rollout(u0, steps)` (the field and
    `steps` applications of the one-step map, `(batch, steps + 1, grid, grid, channels)`), and
    `expression()` or `effective_coefficients()` for `pde_net_eval.evaluate_pde`.
    """

    def evaluate(self, model, metadata, *, trajectories=100, seed=10_000):
        # deferred: the evaluation and the simulator are not needed at start-up
        from odezoo.models.pde_net.pde_net_eval import evaluate_pde, public

        return public(evaluate_pde(model, metadata["equation"], trajectories=trajectories, seed=seed))

    def export_pair(self, model, metadata, quantize=None):
        """The float32 copy is exported and checked against the float64 model on simulated fields (a
        quantised TFLite export by the task's relative field error, `quantized_agreement`)."""
        from odezoo.data.pde import simulate  # deferred: the simulator is not needed at start-up

        sample = simulate(metadata["equation"], batch=16, steps=0, seed=1, noise=0.0).u[:, 0]
        return float32_copy(model), model, sample.astype("float32")

    def golden(self, model, stored):
        return model.rollout(stored["u0"], 1)[:, 1], stored["u1"]

    def spot_checks(self, model, metadata):
        """Ten steps from fresh noise-free trajectories (not the evaluation seed) stay within the card's
        upper-quartile error at t = 1 (errors grow along a rollout)."""
        from odezoo.data.pde import simulate  # deferred: the simulator is not needed at start-up

        at_1 = metadata["pde_report"]["rollout_relative_error"]["t=1"]
        data = simulate(metadata["equation"], batch=2, steps=10, seed=123, noise=0.0, start_time=0.0)
        path = model.rollout(data.u[:, 0], 10)
        error = float(np.sqrt(np.mean((path[:, -1] - data.u[:, -1]) ** 2) / np.var(data.u[:, -1])))
        return [(f"10-step error {error:.3g} < card's t=1 q75 {at_1['q75']:.3g}", error < at_1["q75"])]


def float32_copy(model):
    """The same model in float32 (for runtimes without float64 kernels)."""
    copy = type(model).from_config({**model.get_config(), "dtype": "float32"})
    copy.set_weights([np.asarray(w, "float32") for w in model.get_weights()])
    copy(np.zeros((1, *copy.inputs[0].shape[1:]), "float32"))  # a called model, as the ONNX exporter wants
    return copy
