"""What PDE-Net (`pde_net.py`) and PDE-Net 2.0 (`pde_net2.py`) share: the derivative orders and
feature names of their moment filters, the check of their size, and `PDEModelMixin` (`rollout`, with
the input checks)."""

import numpy as np

from odezoo.errors import OdezooError, check_integer, warn
from odezoo.tasks.pde_rollout import check_fields


def derivative_orders(max_order):
    """`(i, j)` with `i + j <= max_order`, in the official order: 00, 01, 10, 02, 11, 20, ..."""
    return tuple((i, total - i) for total in range(max_order + 1) for i in range(total + 1))


def feature_name(channel, order):
    """`u` for (0, 0), `u_x` for (0, 1), `u_yy` for (2, 0): x runs along axis 1, y along axis 0."""
    i, j = order
    return channel if i + j == 0 else f"{channel}_{'x' * j}{'y' * i}"


def check_filters(kernel_size, max_order):
    """Raises unless the models' moment filters are 5 x 5 or 7 x 7 and reach derivatives of `max_order`."""
    if kernel_size not in (5, 7) or max_order >= kernel_size:
        raise OdezooError(
            f"`kernel_size` must be 5 or 7 and `max_order` < kernel_size (an N x N filter has moments up "
            f"to order N - 1). Received: kernel_size={kernel_size}, max_order={max_order}"
        )


class PDEModelMixin:
    """`periodic` and `rollout`, shared by the PDE-Net models; a model sets `grid` and `channels` (with
    `periodic`, the `FieldModel` of its task) and `TASK_CLASS = PDENetRollout`."""

    periodic = True

    def rollout(self, u0, steps):
        """`(batch, steps + 1, grid, grid, channels)`: `u0` and `steps` applications of the one-step map.

        Where a sample blows up (a value turns NaN or infinite: a field far from the training data, or a
        model unstable at its time step), an `OdezooWarning` names the first step and the samples."""
        steps = check_integer("steps", steps)
        u = check_fields(self, u0)
        frames, warned = [u], False
        for step in range(1, steps + 1):  # the backend's compiled predict step: no per-op eager overhead
            u = self.predict_on_batch(u)
            frames.append(u)
            bad = ~np.isfinite(u).reshape(len(u), -1).all(axis=1)
            if bad.any() and not warned:
                warned = True
                samples = np.flatnonzero(bad).tolist()
                warn(
                    f"The rollout blew up at step {step} of {steps}: {len(samples)} of {len(u)} sample(s) "
                    f"({', '.join(map(str, samples[:5]))}{', ...' if len(samples) > 5 else ''}) hold NaN/inf "
                    "values from there on. Check that u0 is like the fields the model was trained on "
                    "(scale, smoothness)."
                )
        return np.stack(frames, axis=1)
