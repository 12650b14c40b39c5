"""DURR, the Dynamically Unfolding Recurrent Restorer (Zhang, Lu, Liu, Dong, ICLR 2019): one
restoration unit applied repeatedly, and a policy that chooses per image when to stop."""

from functools import partial

import keras
import numpy as np
from keras import ops

from odezoo.errors import OdezooError, check_integer, warn
from odezoo.models._inputs import image_inputs
from odezoo.models.durr.durr_layers import GreedyStopping, Unfolding, policy_values
from odezoo.models.durr.durr_task import DURRRestoration
from odezoo.pretrained import PretrainedMixin


def receptive_field(depth):
    """The receptive field of one step of a unit of `depth` 3x3 convolutions: `2 * depth + 1` pixels."""
    return 2 * depth + 1


# Side in pixels of the tiles in which `restore` steps images larger than it: one step of the default unit
# on a tile (with its margins) holds about 0.1 GB of activations per image.
TILE = 512


@keras.saving.register_keras_serializable(package="odezoo")
class DURR(PretrainedMixin, keras.Model):
    """Dynamically Unfolding Recurrent Restorer, for blind denoising and JPEG deblocking.

    Restoration as moving-endpoint control: the estimate follows `dx/dt = g_θ(x, x0)` from the
    degraded image `x(0) = x0`, and the terminal time `T` is chosen per image. The network is
    forward Euler with unit step, one set of weights at every step:

        x_{t+1} = x_t + g_θ(x_t, x0),    t = 0, 1, ..., T - 1,

    and `T` is the first `t` where the policy's `Q_φ(x_t, x0) = (q_stop, q_continue)` has
    `q_stop >= q_continue` (or `max_steps`); with `policy_tile`, `Q_φ` of an image is the mean of its
    values on the image's tiles of that side, the size of the patches the policy learned on. `g_θ` is a
    DnCNN-style stack of 3x3 convolutions on `x_t` and `x0` concatenated (≈1.8e5 parameters by default);
    `Q_φ` a strided CNN, global average pooling and a dense layer (≈1.0e5). The paper gives neither
    architecture: these are odezoo's choices (docs/papers.md#durr-design).

    Calling the model applies `num_steps` steps (training the unit, export); `restore` acts with
    the policy. Inputs are float images on the [0, 1] scale of any size, `channels` channels.

    Args:
        channels: 1 (grey) or 3 (colour).
        num_steps: steps of `call`.
        max_steps: the cap on the steps `restore` takes.
        features: channels of the restoration unit's hidden convolutions.
        depth: convolutions of the restoration unit.
        policy_features: channels of the policy's first convolution (doubling at each of them).
        policy_depth: the policy's stride-2 convolutions.
        policy_tile: side in pixels of the tiles the policy's values are averaged over (0: the policy
            sees the whole image, what presets saved without this key do).

    Example:
        >>> model = odezoo.DURR(channels=1)
        >>> restored, steps = model.restore(noisy_images)

    Reference: https://arxiv.org/abs/1805.07709
    """

    TASK_CLASS = DURRRestoration
    # how often the unit runs, and how the policy looks at an image
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {"num_steps", "max_steps", "policy_tile"}
    LEGACY_CONFIG = {"policy_tile": 0}
    CITATION = """@inproceedings{zhang2019dynamically,
  title={Dynamically Unfolding Recurrent Restorer: A Moving Endpoint Control Method for Image Restoration},
  author={Zhang, Xiaoshuai and Lu, Yiping and Liu, Jiaying and Dong, Bin},
  booktitle={International Conference on Learning Representations (ICLR)},
  year={2019}
}"""

    def __init__(
        self,
        *,
        channels=1,
        num_steps=8,
        max_steps=30,
        features=64,
        depth=7,
        policy_features=16,
        policy_depth=4,
        policy_tile=0,
        dtype=None,
        **kwargs,
    ):
        if channels not in (1, 3):
            raise OdezooError(f"`channels` must be 1 (grey) or 3 (colour). Received: channels={channels!r}")
        num_steps, max_steps = check_integer("num_steps", num_steps), check_integer("max_steps", max_steps)
        policy_tile = check_integer("policy_tile", policy_tile)
        for name, value in (("features", features), ("depth", depth), ("policy_features", policy_features),
                            ("policy_depth", policy_depth)):  # fmt: skip
            check_integer(name, value, minimum=1)

        # === Functional Model ===
        inputs, _ = image_inputs((None, None, channels), None, None, dtype)
        unfolding = Unfolding(
            channels=channels,
            num_steps=num_steps,
            features=features,
            depth=depth,
            policy_features=policy_features,
            policy_depth=policy_depth,
            name="unfolding",
            dtype=dtype,
        )
        super().__init__(inputs=inputs, outputs=unfolding(inputs), dtype=dtype, **kwargs)

        # === Config ===
        self.set_config(
            dtype=dtype,
            channels=int(channels),
            num_steps=num_steps,
            max_steps=max_steps,
            features=int(features),
            depth=int(depth),
            policy_features=int(policy_features),
            policy_depth=int(policy_depth),
            policy_tile=policy_tile,
        )

    @property
    def unit(self):
        """The restoration unit: `unit(x, x0) = x + g_θ(x, x0)`."""
        return self.get_layer("unfolding").unit

    @property
    def policy(self):
        """The stopping policy: `policy(x, x0) = (q_stop, q_continue)` per image."""
        return self.get_layer("unfolding").policy

    @property
    def min_image_size(self):
        """The receptive field of one step (`receptive_field`): smaller images are refused."""
        return receptive_field(self.depth)

    def step_model(self):
        """One step as a model of its own: `{"x": x, "x0": x0} -> x + g_θ(x, x0)` (export: run it in a
        loop of one's own)."""
        x = keras.Input((None, None, self.channels), name="x", dtype=self.compute_dtype)
        x0 = keras.Input((None, None, self.channels), name="x0", dtype=self.compute_dtype)
        return keras.Model({"x": x, "x0": x0}, self.unit(x, x0), name=f"{self.name}_step")

    def restore_model(self, max_steps=None):
        """`restore` as one model, its loop in the graph: `x0 -> (restored images, steps per image)`
        (export: the whole restoration in one SavedModel)."""
        x0 = keras.Input((None, None, self.channels), name="x0", dtype=self.compute_dtype)
        cap = self.max_steps if max_steps is None else max_steps
        loop = GreedyStopping(self.unit, self.policy, cap, self.policy_tile)
        return keras.Model(x0, loop(x0), name=f"{self.name}_restore")

    def restore(self, images, *, max_steps=None, steps=None, progress=None):
        """Restores `images` acting greedily with the policy: each image takes steps until its
        `q_stop >= q_continue`, at most `max_steps` (default: the config's). With `steps`, every
        image takes exactly that many steps and the policy is not asked (the fixed-depth restorer).
        An `OdezooWarning` says how many images the cap stopped while the policy would go on (they
        may be more degraded than the levels it was trained on).

        Images larger than `TILE` pixels a side take each step in overlapping tiles (`unit_in_tiles`:
        the same result, in bounded memory); `progress(step, cap, tile, tiles)` is then called after
        each tile of each step (counted from 1; `cap`: the most steps there can be).

        Returns:
            `(restored images, steps taken per image)` as NumPy arrays.
        """
        x0 = self.check_inputs(images).astype(self.compute_dtype)
        if steps is not None:
            if max_steps is not None:
                raise OdezooError(
                    "Give `steps` (a fixed depth) or `max_steps` (a cap on the policy's choice), not both. "
                    f"Received: steps={steps!r}, max_steps={max_steps!r}"
                )
            steps = check_integer("steps", steps)
        max_steps = self.max_steps if max_steps is None else check_integer("max_steps", max_steps)
        cap = max_steps if steps is None else steps
        x = x0.copy()
        taken = np.zeros(len(x0), "int64")
        active = np.arange(len(x0))
        for step in range(1, cap + 1):
            if steps is None:
                q = ops.convert_to_numpy(policy_values(self.policy, x[active], x0[active], self.policy_tile))
                active = active[q[:, 0] < q[:, 1]]
                if not len(active):
                    break
            report = None if progress is None or max(x0.shape[1:3]) <= TILE else partial(progress, step, cap)
            x[active] = self.unit_in_tiles(x[active], x0[active], report)
            taken[active] += 1
        else:
            if steps is None and cap and len(active):
                warn(
                    f"{len(active)} of {len(x0)} image(s) stopped at the cap of max_steps={cap} steps while "
                    "the policy would go on: they may be more degraded than the levels the model was trained "
                    "on (a larger max_steps lets it take more steps)."
                )
        return x, taken

    def unit_in_tiles(self, x, x0, tile_done=None):
        """`unit(x, x0)` as NumPy, computed in the tiles of `tile_grid`, each read with a margin of `depth`
        pixels (the unit's receptive radius: `depth` 3x3 convolutions) so that its core is what the whole
        image gives; `tile_done(tile, tiles)` is called after each (counted from 1)."""
        out = np.empty_like(x)
        height, width = x.shape[1:3]
        grid = tile_grid(height, width)
        for tile, (rows, cols) in enumerate(grid, 1):
            top, left = max(rows.start - self.depth, 0), max(cols.start - self.depth, 0)
            region = np.s_[:, top : rows.stop + self.depth, left : cols.stop + self.depth]
            y = ops.convert_to_numpy(self.unit(x[region], x0[region]))
            dy, dx = rows.start - top, cols.start - left
            out[:, rows, cols] = y[:, dy : dy + rows.stop - rows.start, dx : dx + cols.stop - cols.start]
            if tile_done is not None:
                tile_done(tile, len(grid))
        return out


def tile_grid(height, width):
    """`(rows, cols)` slices of the tiles covering a `height` x `width` image: as few as keep each within
    `TILE` pixels a side, of equal sizes (to a pixel); one tile for an image no larger."""

    def cuts(size):
        count = -(-size // TILE)
        bounds = [round(i * size / count) for i in range(count + 1)]
        return [slice(a, b) for a, b in zip(bounds, bounds[1:])]

    return [(rows, cols) for rows in cuts(height) for cols in cuts(width)]
