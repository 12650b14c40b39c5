"""DURR recipe: the restoration unit first, then its stopping policy by deep Q-learning
(TensorFlow only: custom training steps with `tf.GradientTape`).

The paper's training details are NOT FOUND (docs/papers.md#durr-paper); every choice below is ours, following
what two secondary summaries report:

- The photographs of the training split are divided by `policy_every` = k: the k-th, 2k-th, ... are
  the policy's, the others the unit's (issue 29: the policy learns where the unit is as good as on new
  images, not on the unit's own training images); k = 0 gives both stages all of them. With
  `policy_region` = r (and k = 0) every photograph is split instead: its bottom r of rows is the
  policy's, the rest the unit's (the policy then sees every kind of image the unit does, on pixels the
  unit never trained on). With `policy_data` (a data set of `clean_images`, its training split) the
  policy learns on those images and the unit on the whole training split.
- Stage 1 (`unit_epochs`): the unit alone on random patches of the unit's photographs (crops of
  `patch_size` times one of `crop_scales`, shrunk to `patch_size`, under one of the 8 flips / quarter
  turns), each degraded at its own level drawn from [`level_low`, `level_high`] (sigma on the 0..255
  scale, or JPEG quality), unfolded `unit_steps` times, or per level by `step_table` (the "refined policy":
  `"15:4,30:6,50:9"` gives a patch the steps of the first listed level >= its own, the last entry's
  beyond); mean squared error against the clean patch; Adam.
- Stage 2 (`policy_epochs`): the unit frozen (trained by stage 1, or taken from the preset
  `unit_from`), the policy a Q-network over (stop, continue), on patches of the policy's photographs.
  Episodes start at a degraded patch; with `random_starts` each patch's first k actions are
  `continue`, k uniform in 0..`max_steps` - 1 (recorded and learned from like any step: the replay then
  holds every step about equally, not mostly the first ones, as epsilon-greedy episodes would);
  `continue` applies the unit and earns `L(x_t) - L(x_{t+1})`
  with `L = 10 log10 MSE` against the clean patch (`reward="db"`, the PSNR gain in dB), or `L = MSE /
  MSE(x_0)` (`reward="mse"`: the paper's decrease of the restoration loss, scaled by the degraded
  patch's, so a patch's rewards sum to at most 1 whatever its level or content; in dB a flat patch,
  whose MSE goes to 0, earns without bound), `stop` earns 0 and ends the episode, as does reaching
  `max_steps`. The policy sees patches of `patch_size`; `policy_tile` sets the model's `policy_tile`,
  the tiles over which it averages its values on a whole image at test time (`patch_size` makes test
  match training; 0 shows it the whole image). Behaviour is epsilon-greedy, epsilon falling linearly
  from `epsilon_start` to `epsilon_end` over the stage; transitions go to a replay buffer of
  `replay_size`; targets `r + gamma * max_a Q_target(x_{t+1}, a)` (with `double_dqn`:
  `r + gamma * Q_target(x_{t+1}, argmax_a Q(x_{t+1}, a))`, van Hasselt et al. 2016) come from a copy
  of the policy synchronised every `target_update` updates; Huber loss; one update per environment step.
  That is `policy_method="dqn"`, `durr_deblock_jpeg`'s. With `"dqn_replay"` the replay instead holds
  every transition of `policy_patches` patches unrolled once to `max_steps` (the frozen unit makes the
  environment deterministic: no exploration, every level and step equally often), and `"supervised"`
  regresses the values on the exact returns of those trajectories instead of bootstrapped targets
  (`_ReplayPolicyStage`).

After training, the test photographs are restored at each of `eval_levels` (levels above the
training range measure generalisation) with the learned stopping. A checkpoint is written after
every epoch of either stage; a killed run resumes at the next epoch (the optimiser state and the
replay buffer start afresh); `unit_epochs` may be lowered on resuming, to end stage 1 early.
"""

from dataclasses import dataclass
from functools import partial

import keras
import numpy as np

from odezoo.data.restoration import check_degradation, clean_images, training_patches
from odezoo.errors import OdezooError
from odezoo.models.durr import DURR
from odezoo.models.durr.durr import receptive_field
from odezoo.models.durr.durr_layers import StoppingPolicy
from odezoo.recipes._common import DataRunConfig, check_positive, finish_run, start_run, train_command
from odezoo.training import read_checkpoint, write_checkpoint

DEGRADATIONS = ("noise", "jpeg")
REWARDS = ("db", "mse")
POLICY_METHODS = ("dqn", "dqn_replay", "supervised")


@dataclass(frozen=True, kw_only=True)
class Config(DataRunConfig):
    """Every knob of the recipe; `odezoo train RECIPE --set key=value` changes one (`limit`: images per
    split)."""

    RESUMABLE = ("unit_epochs", "eval_levels")

    degradation: str = "noise"  # "noise" (Gaussian, sigma on 0..255) or "jpeg" (quality)
    level_low: float = 15.0  # training levels: uniform in [level_low, level_high]
    level_high: float = 50.0
    eval_levels: str = "25,15,50,60,65,75"  # the first is the headline; 60..75 lie beyond training
    dataset: str = "skimage_photos"
    channels: int = 1
    features: int = 64
    depth: int = 7
    policy_features: int = 16
    policy_depth: int = 4
    patch_size: int = 40
    batch_size: int = 16
    steps_per_epoch: int = 100
    unit_steps: int = 4  # stage 1's unfoldings where `step_table` is empty
    step_table: str = "15:3,25:4,35:5,50:6"  # "level:steps,...": per-level unfoldings
    unit_epochs: int = 12
    learning_rate: float = 1e-3
    policy_epochs: int = 40
    policy_learning_rate: float = 3e-4
    max_steps: int = 12
    gamma: float = 1.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    replay_size: int = 10000
    target_update: int = 100
    policy_every: int = 3  # the k-th, 2k-th, ... training images are the policy's, the rest the unit's
    policy_region: float = 0.0  # the bottom fraction of every photograph is the policy's (policy_every=0)
    policy_data: str = ""  # the policy's own data set instead ("train" split; the unit then gets all)
    crop_scales: str = "1,1.5,2"  # stage 1's crops: patch_size times one of these, shrunk to patch_size
    unit_from: str = ""  # a DURR preset (name or folder) whose unit stage 2 starts from ("": stage 1's)
    double_dqn: bool = True
    random_starts: bool = True
    reward: str = "db"  # "db": the decrease of 10 log10 MSE; "mse": of MSE / the degraded patch's MSE
    policy_method: str = "dqn"  # "dqn": episodes; "dqn_replay", "supervised": a replay of trajectories
    policy_patches: int = 1024  # the replay's unrolled patches ("dqn_replay", "supervised")
    policy_batch_size: int = 64  # states per update ("dqn_replay", "supervised")
    policy_tile: int = 0  # the model's `policy_tile` (0: the policy sees whole images at test time)

    def preset_name(self):
        """`durr_denoise_gray`, `durr_deblock_jpeg`; `_color` for 3 channels, `_<dataset>` for data
        other than the bundled photographs, `_seed<k>` when k > 0."""
        if self.preset:
            return self.preset
        kind = ("denoise_" + ("color" if self.channels == 3 else "gray") if self.degradation == "noise"
                else "deblock_jpeg" + ("_color" if self.channels == 3 else ""))  # fmt: skip
        data = "" if self.dataset == "skimage_photos" else f"_{self.dataset}"
        return f"durr_{kind}{data}" + (f"_seed{self.seed}" if self.seed else "")

    def table(self):
        """`[(level, steps), ...]` of `step_table`, sorted by level (empty: `unit_steps` for all)."""
        try:
            pairs = [tuple(entry.split(":")) for entry in self.step_table.split(",") if entry.strip()]
            return sorted((float(level), int(steps)) for level, steps in pairs)
        except ValueError:
            raise OdezooError(
                f"`step_table` must read 'level:steps,...' (e.g. '15:4,30:6,50:9'). Received: "
                f"step_table={self.step_table!r}"
            ) from None

    def scales(self):
        """The crop scales of `crop_scales`."""
        try:
            return tuple(float(scale) for scale in self.crop_scales.split(","))
        except ValueError:
            raise OdezooError(
                "`crop_scales` must be numbers >= 1 separated by commas. Received: "
                f"crop_scales={self.crop_scales!r}"
            ) from None

    def levels(self):
        """The evaluation levels of `eval_levels`."""
        try:
            return [float(level) for level in self.eval_levels.split(",")]
        except ValueError:
            raise OdezooError(
                "`eval_levels` must be numbers separated by commas. Received: "
                f"eval_levels={self.eval_levels!r}"
            ) from None

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        if self.degradation not in DEGRADATIONS:
            raise OdezooError(f"`degradation` must be one of {DEGRADATIONS}. Received: {self.degradation!r}")
        if self.channels not in (1, 3):
            raise OdezooError(f"`channels` must be 1 or 3. Received: channels={self.channels!r}")
        kind = "sigma" if self.degradation == "noise" else "quality"
        for level in (self.level_low, self.level_high, *self.levels(), *(lv for lv, _ in self.table())):
            check_degradation(**{kind: level})  # JPEG qualities must be whole numbers
        if self.level_low > self.level_high:
            raise OdezooError(
                f"`level_low` must be <= `level_high`. Received: {self.level_low}, {self.level_high}"
            )
        positive = ("features", "depth", "policy_features", "policy_depth", "patch_size", "batch_size",
                    "steps_per_epoch", "max_steps", "replay_size", "target_update", "policy_patches",
                    "policy_batch_size")  # fmt: skip
        check_positive(self, *positive)
        check_positive(self, "unit_steps", "unit_epochs", "policy_epochs", "limit", "policy_every", minimum=0)
        if self.patch_size < receptive_field(self.depth):
            raise OdezooError(
                f"`patch_size` must be at least {receptive_field(self.depth)} pixels, the receptive field of "
                f"one step at depth={self.depth} (the least image size DURR restores). Received: "
                f"patch_size={self.patch_size}"
            )
        if min(self.scales()) < 1:
            raise OdezooError(f"`crop_scales` must be >= 1. Received: crop_scales={self.crop_scales!r}")
        if any(steps < 0 for _, steps in self.table()):
            raise OdezooError(f"`step_table` steps must be >= 0. Received: step_table={self.step_table!r}")
        for name in ("gamma", "epsilon_start", "epsilon_end"):
            if not 0 <= getattr(self, name) <= 1:
                raise OdezooError(f"`{name}` must lie in [0, 1]. Received: {name}={getattr(self, name)!r}")
        if self.policy_method not in POLICY_METHODS:
            raise OdezooError(
                f"`policy_method` must be one of {POLICY_METHODS}. Received: "
                f"policy_method={self.policy_method!r}"
            )
        if self.reward not in REWARDS:
            raise OdezooError(f"`reward` must be one of {REWARDS}. Received: reward={self.reward!r}")
        if not 0 <= self.policy_region < 1:
            raise OdezooError(
                f"`policy_region` must lie in [0, 1). Received: policy_region={self.policy_region!r}"
            )
        if self.policy_region and (self.policy_every or self.policy_data):
            raise OdezooError(
                "`policy_region` splits every photograph between the stages; it cannot be combined with "
                f"another split. Received: policy_region={self.policy_region!r}, "
                f"policy_every={self.policy_every!r}, policy_data={self.policy_data!r}: set policy_every=0 "
                "and policy_data= (empty) with it."
            )
        if self.policy_learning_rate <= 0:
            raise OdezooError(f"`policy_learning_rate` must be > 0. Received: {self.policy_learning_rate!r}")


# The published denoiser (issue 29): its policy learns by Q-learning on a replay of the bottom quarter
# of every photograph, which the unit never trains on; the reward is the paper's decrease of the MSE,
# looked at one step ahead (gamma = 0).
DENOISE = Config(
    policy_every=0, policy_region=0.25, policy_method="dqn_replay", reward="mse", gamma=0.0, policy_tile=40
)
# The published deblocker: its policy learns by episodes on every third photograph.
DEBLOCK = Config(
    degradation="jpeg", level_low=10.0, level_high=40.0, eval_levels="20,10,30,40,5",
    step_table="10:6,20:5,30:4,40:3",
)  # fmt: skip
CONFIGS = (DENOISE, DEBLOCK)


def train(config, workdir, *, callbacks=()):
    """Trains the unit, then the policy, evaluates on the test photographs and writes a preset.

    `callbacks` are called with each finished epoch's record (after its checkpoint is written).

    Returns:
        `{"psnr_<level>", "mean_steps_<level>", ..., "preset_dir"}`.
    """
    import json

    if keras.config.backend() != "tensorflow":
        raise OdezooError(
            "The DURR recipe runs on TensorFlow; set KERAS_BACKEND=tensorflow (now "
            f"{keras.config.backend()})."
        )

    def prepare():  # the photographs and the model (with `unit_from`'s unit), before the run folder
        model = DURR(
            channels=config.channels,
            num_steps=max([config.unit_steps, *(steps for _, steps in config.table())]),
            max_steps=config.max_steps,
            features=config.features,
            depth=config.depth,
            policy_features=config.policy_features,
            policy_depth=config.policy_depth,
            policy_tile=config.policy_tile,
            name=config.preset_name(),
        )
        if config.unit_from:
            _load_unit(model, config.unit_from)
        return _training_images(config), model

    workdir, (images, model) = start_run(workdir, config, prepare)
    checkpoints = workdir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    done, weights, history = read_checkpoint(checkpoints, "epoch")
    if done:
        model.load_weights(weights)
        print(f"resumed after epoch {done} of {config.unit_epochs + config.policy_epochs}", flush=True)
    policy_stage = _PolicyStage if config.policy_method == "dqn" else _ReplayPolicyStage
    stages = [(_UnitStage, config.unit_epochs), (policy_stage, config.policy_epochs)]
    first = 0
    for stage_cls, epochs in stages:
        stage = None
        for epoch in range(max(first, done), first + epochs):
            stage = stage or stage_cls(model, config)
            history.append(
                {
                    "epoch": epoch + 1,
                    "stage": stage.name,
                    **stage.run_epoch(images[stage.name], epoch, first, epochs),
                }
            )
            write_checkpoint(checkpoints, model, "epoch", epoch + 1, history)
            print(json.dumps(history[-1]), flush=True)
            for callback in callbacks:
                callback(history[-1])
        first += epochs
    metrics, summary = _evaluate(model, config)
    recipe, _ = train_command(config)
    kind = "blind Gaussian denoising" if config.degradation == "noise" else "JPEG deblocking"
    return finish_run(
        workdir,
        model,
        config,
        summary=summary,
        history=history,
        metadata={
            "description": f"DURR for {kind} ({config.level_low:g}..{config.level_high:g}) on "
            f"{config.dataset} by recipe `{recipe}`.",
            "dataset": config.dataset,
            "degradation": {key: metrics[0][key] for key in ("sigma", "quality") if key in metrics[0]},
            "metrics": metrics,
        },
    )


def _training_images(config):
    """`{"unit": ..., "policy": ...}`: each stage's clean images of the training split (see
    `policy_every`, `policy_region`, `policy_data`), as cached datasets."""
    images, count = clean_images(
        config.dataset,
        "train",
        channels=config.channels,
        limit=config.limit,
        data_dir=config.data_dir or None,
    )
    every = config.policy_every
    if config.policy_data:
        policy, _ = clean_images(config.policy_data, "train", channels=config.channels, limit=config.limit)
        return {"unit": images.cache(), "policy": policy.cache()}
    if config.policy_region:
        return {stage: images.map(partial(_rows, share=config.policy_region, policy=policy)).cache()
                for stage, policy in (("unit", False), ("policy", True))}  # fmt: skip
    if not every:
        return dict.fromkeys(("unit", "policy"), images.cache())
    if count < every:
        raise OdezooError(
            f"`policy_every`={every} leaves the policy no image: the training split of {config.dataset} "
            f"has {count} (limit={config.limit}). Lower `policy_every`, or set it to 0 to train both "
            "stages on every image."
        )
    indexed = images.enumerate()
    return {
        stage: indexed.filter(lambda i, _, policy=policy: (i % every == every - 1) == policy)
        .map(lambda _, image: image)
        .cache()
        for stage, policy in (("unit", False), ("policy", True))
    }


def _rows(image, *, share, policy):
    """The bottom `share` of the rows of `image` (at least one row) if `policy`, else the rest."""
    import tensorflow as tf

    rows = tf.shape(image)[0]
    cut = rows - tf.maximum(1, tf.cast(tf.round(share * tf.cast(rows, tf.float32)), tf.int32))
    return image[cut:] if policy else image[:cut]


def _load_unit(model, source):
    """Copies the unit of the DURR preset `source` (a name or folder) into `model`."""
    from odezoo.zoo import load

    other = load(source)
    if not isinstance(other, DURR):
        raise OdezooError(
            f"`unit_from` must name a DURR preset. Received: {source!r} ({type(other).__name__})"
        )
    try:
        model.unit.set_weights(other.unit.get_weights())
    except ValueError:
        raise OdezooError(
            f"`unit_from` {source!r} has a unit of another shape than this run's (channels, features, "
            "depth): give a preset trained with the same settings."
        ) from None


def _patches(images, config, seed, scales=(1.0,)):
    levels = (config.level_low, config.level_high)
    kind = {"sigma": levels} if config.degradation == "noise" else {"quality": tuple(int(v) for v in levels)}
    return training_patches(
        images, patch_size=config.patch_size, batch_size=config.batch_size, seed=seed, scales=scales, **kind
    )


class _UnitStage:
    """Stage 1: the unit, unfolded per patch as `unit_steps` or `step_table` says, against the clean patch."""

    name = "unit"

    def __init__(self, model, config):
        import tensorflow as tf

        self.model, self.config, self.table = model, config, config.table()
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        unit, most = model.unit, model.num_steps

        @tf.function(reduce_retracing=True)
        def step(degraded, clean, steps):
            with tf.GradientTape() as tape:
                x = degraded
                for t in range(most):
                    x = tf.where(tf.reshape(t < steps, (-1, 1, 1, 1)), unit(x, degraded), x)
                loss = tf.reduce_mean(tf.square(x - clean))
            grads = tape.gradient(loss, unit.trainable_variables)
            self.optimizer.apply(grads, unit.trainable_variables)
            return loss

        self.step = step

    def steps_for(self, levels):
        """Unfoldings per patch: `unit_steps`, or the table's entry for each patch's level."""
        if not self.table:
            return np.full(len(levels), self.config.unit_steps, "int32")
        bounds, steps = np.array([lv for lv, _ in self.table]), np.array([n for _, n in self.table])
        return steps[np.minimum(np.searchsorted(bounds, levels), len(steps) - 1)].astype("int32")

    def run_epoch(self, images, epoch, first, epochs):
        import time

        start, losses = time.perf_counter(), []
        batches = _patches(images, self.config, 1000 * self.config.seed + epoch, self.config.scales())
        for degraded, clean, level in batches.take(self.config.steps_per_epoch):
            losses.append(float(self.step(degraded, clean, self.steps_for(level.numpy()))))
        mse = float(np.mean(losses))
        return {"mse": mse, "psnr": float(-10 * np.log10(mse)), "seconds": time.perf_counter() - start}


def _target_copy(policy, config):
    """A copy of `policy`, the target network of bootstrapped Q-learning (its stage synchronises it)."""
    target = StoppingPolicy.from_config(policy.get_config())
    target.build((None, None, None, config.channels))
    target.set_weights(policy.get_weights())
    return target


class _PolicyStage:
    """Stage 2: deep Q-learning of the stopping policy (see the module docstring)."""

    name = "policy"

    def __init__(self, model, config):
        import tensorflow as tf

        self.model, self.config = model, config
        policy, unit = model.policy, model.unit
        self.target = _target_copy(policy, config)
        self.optimizer = keras.optimizers.Adam(config.policy_learning_rate)
        self.replay = _Replay(config.replay_size, (config.patch_size, config.patch_size, config.channels))
        self.updates = 0
        gamma, double = config.gamma, config.double_dqn

        @tf.function(reduce_retracing=True)
        def update(x, x0, action, reward, after, done):
            q_next = self.target(after, x0)
            if double:
                choice = tf.argmax(policy(after, x0), axis=-1, output_type=tf.int32)
                best_next = tf.gather(q_next, choice, axis=1, batch_dims=1)
            else:
                best_next = tf.reduce_max(q_next, axis=-1)
            goal = reward + gamma * (1.0 - done) * best_next
            with tf.GradientTape() as tape:
                q = tf.gather(policy(x, x0), action, axis=1, batch_dims=1)
                loss = tf.reduce_mean(keras.losses.huber(goal[:, None], q[:, None]))
            grads = tape.gradient(loss, policy.trainable_variables)
            self.optimizer.apply(grads, policy.trainable_variables)
            return loss

        self.update = update
        self.act = tf.function(lambda x, x0: (policy(x, x0), unit(x, x0)), reduce_retracing=True)

    def epsilon(self, epoch, first, epochs):
        """Linear from `epsilon_start` (first epoch of the stage) to `epsilon_end` (last)."""
        fraction = (epoch - first) / max(epochs - 1, 1)
        return self.config.epsilon_start + fraction * (self.config.epsilon_end - self.config.epsilon_start)

    def run_epoch(self, images, epoch, first, epochs):
        import time

        config, start = self.config, time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        epsilon = self.epsilon(epoch, first, epochs)
        batches = iter(_patches(images, config, 1000 * config.seed + epoch).as_numpy_iterator())
        losses, returns, lengths = [], [], []
        while len(losses) < config.steps_per_epoch:
            degraded, clean, _ = next(batches)
            x, alive, total = degraded.copy(), np.arange(len(degraded)), np.zeros(len(degraded))
            begin = rng.integers(0, config.max_steps, len(x)) if config.random_starts else np.zeros(len(x))
            scale = _mse(degraded, clean) if config.reward == "mse" else None
            error = _error(x, clean, scale)
            for t in range(config.max_steps):
                q, ahead = (np.asarray(v) for v in self.act(x[alive], degraded[alive]))
                greedy = (q[:, 1] > q[:, 0]).astype("int32")
                action = np.where(
                    rng.uniform(size=len(alive)) < epsilon, rng.integers(0, 2, len(alive)), greedy
                )
                action[t < begin[alive]] = 1  # a random start: continue, recorded like any step
                moved = action == 1
                after = np.where(moved[:, None, None, None], ahead, x[alive])
                part = None if scale is None else scale[alive]
                new_error = np.where(moved, _error(after, clean[alive], part), error[alive])
                reward = error[alive] - new_error
                done = ~moved | (t + 1 == config.max_steps)
                self.replay.add(x[alive], degraded[alive], action, reward, after, done)
                x[alive], error[alive], total[alive] = after, new_error, total[alive] + reward
                lengths.extend(t + moved[done])
                alive = alive[~done]
                if len(self.replay) >= config.batch_size:
                    sample = self.replay.sample(rng, config.batch_size)
                    losses.append(float(self.update(*sample)))
                    self.updates += 1
                    if self.updates % config.target_update == 0:
                        self.target.set_weights(self.model.policy.get_weights())
                if not len(alive):
                    break
            returns.extend(total)
        return {
            "q_loss": float(np.mean(losses)),
            "epsilon": epsilon,
            f"mean_return_{config.reward}": float(np.mean(returns)),  # dB, or a fraction of MSE(x_0)
            "mean_stop_step": float(np.mean(lengths)),
            "seconds": time.perf_counter() - start,
        }


def optimal_stopping(errors, gamma=1.0):
    """`(q_continue, stop)` of trajectories whose losses are `errors[t, i]` at `x_0 .. x_T` (axis 0): the
    optimal value of continuing from each of `x_0 .. x_{T-1}`, `q(t) = errors[t] - errors[t + 1] +
    gamma * max(0, q(t + 1))` with nothing beyond `T`, and per trajectory the first step where stopping
    is optimal (`T` where continuing always is)."""
    value, q = np.zeros(errors.shape[1:]), []
    for t in reversed(range(len(errors) - 1)):
        q.append(errors[t] - errors[t + 1] + gamma * value)
        value = np.maximum(q[-1], 0.0)
    q = np.stack(q[::-1])
    return q, np.argmax(np.concatenate([q <= 0, np.ones((1, *q.shape[1:]), bool)]), axis=0)


class _ReplayPolicyStage:
    """Stage 2 on a replay of whole trajectories (`policy_method` "dqn_replay" or "supervised").

    The unit is frozen, so the environment is deterministic: `policy_patches` degraded patches are each
    unrolled `max_steps` steps once, at the stage's start, and every state `x_t` of every trajectory is
    in the replay, with both its actions (`stop`: reward 0, terminal; `continue`: reward `L(x_t) -
    L(x_{t+1})`, to `x_{t+1}`). No exploration is needed, and the replay holds every level and step
    equally. Each update takes `policy_batch_size` states at random; its targets for `q_continue` are
    `r + gamma * max(0, Q)` of the next state, with `Q` the target network's value at the policy's
    choice (Double DQN, synchronised every `target_update` updates: "dqn_replay"), or the exact
    optimal-stopping value of the trajectory, known from the clean patch (`optimal_stopping`, the fixed
    point deep Q-learning seeks: "supervised"); `q_stop`'s target is 0. Huber loss, Adam. A resumed run
    rebuilds the same replay (its patches are drawn from the seed)."""

    name = "policy"

    def __init__(self, model, config):
        import tensorflow as tf

        self.model, self.config = model, config
        policy = model.policy
        self.target = _target_copy(policy, config)
        self.optimizer = keras.optimizers.Adam(config.policy_learning_rate)
        self.unroll = tf.function(model.unit, reduce_retracing=True)
        self.states = self.x0 = self.errors = None
        self.updates = 0
        bootstrap, gamma = config.policy_method == "dqn_replay", config.gamma

        @tf.function(reduce_retracing=True)
        def update(x, x0, reward, after, done, exact):
            if bootstrap:
                choice = tf.argmax(policy(after, x0), axis=-1, output_type=tf.int32)
                best = tf.gather(self.target(after, x0), choice, axis=1, batch_dims=1)
                exact = reward + gamma * (1.0 - done) * tf.maximum(best, 0.0)
            goal = tf.stack([tf.zeros_like(exact), exact], axis=-1)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.huber(goal, policy(x, x0)))
            grads = tape.gradient(loss, policy.trainable_variables)
            self.optimizer.apply(grads, policy.trainable_variables)
            return loss

        self.update = update

    def fill(self, images):
        """Unrolls `policy_patches` patches of `images` `max_steps` steps (the replay)."""
        config, states, x0, clean = self.config, [], [], []
        batches = _patches(images, config, 1000 * config.seed + 999).as_numpy_iterator()
        while sum(map(len, x0)) < config.policy_patches:
            degraded, target, _ = next(batches)
            path = [degraded]
            for _ in range(config.max_steps):
                path.append(np.asarray(self.unroll(path[-1], degraded)))
            states.append(np.stack(path, axis=1))
            x0.append(degraded)
            clean.append(target)
        n = config.policy_patches
        self.states, self.x0, clean = (np.concatenate(v)[:n] for v in (states, x0, clean))
        scale = _mse(self.x0, clean) if config.reward == "mse" else None
        steps = range(config.max_steps + 1)
        self.errors = np.stack([_error(self.states[:, t], clean, scale) for t in steps], axis=1)
        self.exact = optimal_stopping(self.errors.T, config.gamma)[0].T.astype("float32")

    def run_epoch(self, images, epoch, first, epochs):
        import time

        config, start = self.config, time.perf_counter()
        if self.states is None:
            self.fill(images)
        rng = np.random.default_rng([config.seed, epoch])
        losses = []
        for _ in range(config.steps_per_epoch):
            i = rng.integers(0, len(self.states), config.policy_batch_size)
            t = rng.integers(0, config.max_steps, config.policy_batch_size)
            reward = (self.errors[i, t] - self.errors[i, t + 1]).astype("float32")
            done = (t + 1 == config.max_steps).astype("float32")
            sample = (self.states[i, t], self.x0[i], reward, self.states[i, t + 1], done, self.exact[i, t])
            losses.append(float(self.update(*sample)))
            self.updates += 1
            if self.updates % config.target_update == 0:
                self.target.set_weights(self.model.policy.get_weights())
        stops = np.argmax(np.concatenate([self.exact <= 0, np.ones((len(self.exact), 1), bool)], 1), 1)
        return {
            "q_loss": float(np.mean(losses)),
            "optimal_stop_step": float(np.mean(stops)),  # the first step where stopping is best, per patch
            f"optimal_return_{config.reward}": float(np.mean(np.maximum(self.exact[:, 0], 0.0))),
            "seconds": time.perf_counter() - start,
        }


class _Replay:
    """A ring buffer of transitions `(x, x0, action, reward, x_next, done)`."""

    def __init__(self, size, shape):
        self.size, self.count, self.next = size, 0, 0
        self.x, self.x0, self.after = (np.zeros((size, *shape), "float32") for _ in range(3))
        self.action, self.reward, self.done = (
            np.zeros(size, "int32"),
            np.zeros(size, "float32"),
            np.zeros(size, "float32"),
        )

    def __len__(self):
        return self.count

    def add(self, x, x0, action, reward, after, done):
        for i in range(len(x)):
            j = self.next
            self.x[j], self.x0[j], self.after[j] = x[i], x0[i], after[i]
            self.action[j], self.reward[j], self.done[j] = action[i], reward[i], done[i]
            self.next, self.count = (j + 1) % self.size, min(self.count + 1, self.size)

    def sample(self, rng, n):
        i = rng.integers(0, self.count, n)
        return self.x[i], self.x0[i], self.action[i], self.reward[i], self.after[i], self.done[i]


def _mse(x, clean):
    """The mean squared error per image."""
    return np.mean((x - clean) ** 2, axis=(1, 2, 3))


def _error(x, clean, scale=None):
    """The loss whose decrease is the policy's reward: `10 log10 MSE` per image (minus the PSNR in dB),
    or with `scale` (reward `"mse"`) `MSE / scale`, the MSE relative to the degraded image's."""
    if scale is None:
        return 10 * np.log10(_mse(x, clean) + 1e-10)
    return _mse(x, clean) / np.maximum(scale, 1e-10)


def _evaluate(model, config):
    """PSNR and mean steps on the test split at each of `eval_levels`, restoring with the policy."""
    kind = "sigma" if config.degradation == "noise" else "quality"
    flag = "--sigma" if kind == "sigma" else "--quality"
    metrics, summary = [], {}
    for level in config.levels():
        level = level if kind == "sigma" else int(level)
        result = model.task.evaluate(
            model, {}, dataset=config.dataset, split="test", limit=config.limit,
            data_dir=config.data_dir or None, max_steps=config.max_steps, **{kind: level},
        )  # fmt: skip
        metrics.append({
            "dataset": config.dataset, "split": "test", "metric": "psnr", "value": result["psnr"],
            kind: level, "ssim": result["ssim"], "degraded_psnr": result["degraded_psnr"],
            "mean_steps": result["mean_steps"],
            "num_examples": result["num_examples"],
            "command": f"odezoo eval {config.preset_name()} --dataset {config.dataset} {flag} {level:g}",
        })  # fmt: skip
        summary[f"psnr_{level:g}"], summary[f"mean_steps_{level:g}"] = result["psnr"], result["mean_steps"]
    return metrics, summary
