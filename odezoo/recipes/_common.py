"""The run layer every recipe shares: the run settings (`RunConfig` and its two extensions) and their
typing from `odezoo train --set/--config`, the checks of settings, the start of a run (`start_run`:
settings checked, the settings guard, what the run prepares, and only then the run folder;
`start_image_run` for image classifiers), the `odezoo train`
command that reproduces a config, and the end of a run (the preset folder and an atomic
`metrics.json`). Checkpoints and schedules: `odezoo.training`.
"""

import dataclasses
import difflib
import json
import math
import re
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

import keras

from odezoo._files import check_folder, write_json_atomic
from odezoo.data.images import get_dataset, image_dataset
from odezoo.errors import OdezooError
from odezoo.training import STATE_FILE, check_strategy, make_strategy

# Settings a run may change when it resumes: they do not alter what the checkpoints hold (a Config adds
# its own in `RESUMABLE`).
RESUMABLE_CHANGES = ("epochs", "strategy", "tpu", "data_dir", "preset")
# The run settings, in the order they follow a Config's own settings (config lists, `--set` order).
RUN_SETTINGS = ("limit", "seed", "strategy", "tpu", "data_dir", "preset")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
    """The settings of every recipe. A family's `Config` (a frozen dataclass) extends it, or
    `DataRunConfig` / `DistributedRunConfig`, with its own settings, `preset_name()` and `validate()`;
    its class attribute `RESUMABLE` names its own settings a resumed run may change."""

    RESUMABLE: ClassVar[tuple[str, ...]] = ()

    seed: int = 0
    preset: str = ""  # name of the preset written; "" derives it

    @classmethod
    def setting_names(cls):
        """The settings' names: the Config's own in their order, then the run settings (`RUN_SETTINGS`)."""
        names = [field.name for field in dataclasses.fields(cls)]
        return (*(n for n in names if n not in RUN_SETTINGS), *(n for n in RUN_SETTINGS if n in names))

    def settings(self):
        """`{name: value}` of every setting, in `setting_names()` order."""
        return {name: getattr(self, name) for name in self.setting_names()}

    def configure(self, changes, recipe):
        """This config with `changes` (name -> value) applied: a string (`--set KEY=VALUE`) is converted to
        the setting's type, any other value (from a JSON `--config`) must have it. `recipe` names the
        recipe in the messages."""
        return dataclasses.replace(
            self, **{key: self._typed(key, value, recipe) for key, value in changes.items()}
        )

    def _typed(self, key, value, recipe):
        """`value` as the setting `key` takes it; raises `OdezooError` for an unknown key or a misfit."""
        names = self.setting_names()
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OdezooError(
                f"Unknown setting {key!r} for recipe {recipe!r}.{hint} Settings: {', '.join(names)}."
            )
        if key == "preset" and not (value == "" or re.fullmatch(r"\w[\w.-]*", str(value), re.ASCII)):
            raise OdezooError(
                "`preset` names the folder written in the work directory: letters, digits, '_', '-', '.', "
                f"not starting with '.' or '-' (e.g. preset=my_model). Received: preset={value!r}"
            )
        kind = type(getattr(self, key))
        if not isinstance(value, str) or kind is str:  # from a JSON --config: its type must fit as it is
            fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            if not (fits or (kind is float and isinstance(value, int) and not isinstance(value, bool))):
                raise OdezooError(
                    f"Setting {key!r} takes a {kind.__name__}. Received: {value!r} ({type(value).__name__})"
                )
            return float(value) if kind is float else value
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return kind(value)
        except ValueError:
            raise OdezooError(f"Setting {key!r} takes a {kind.__name__}. Received: {value!r}") from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataRunConfig(RunConfig):
    """`RunConfig` of a recipe that reads a data set: `limit` caps the examples it reads (0: all; for
    smoke tests), `data_dir` says where they are ("": the default place)."""

    limit: int = 0
    data_dir: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DistributedRunConfig(DataRunConfig):
    """`DataRunConfig` of a recipe that trains under a `tf.distribute` strategy (`training.make_strategy`:
    `strategy`, and `tpu`, the TPU's address)."""

    strategy: str = "auto"
    tpu: str = ""


# The precisions an image recipe trains in (`--set dtype=...`): Keras' mixed policies compute in half
# precision and keep float32 variables; the preset a run writes computes in float32 whatever it trained in.
DTYPES = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageRunConfig(DistributedRunConfig):
    """`DistributedRunConfig` of an image classifier's recipe: `dtype`, the precision it trains in (one of
    `DTYPES`; `training_dtype`, `mixed_precision` and `float32_model` apply it)."""

    dtype: str = "float32"


def check_choice(config, name, allowed):
    """Raises unless the setting `name` is one of `allowed`."""
    value = getattr(config, name)
    if value not in allowed:
        raise OdezooError(f"`{name}` must be one of {list(allowed)}. Received: {name}={value!r}")


def check_positive(config, *names, minimum=1):
    """Raises unless every setting in `names` is at least `minimum`."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise OdezooError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")


def start_run(workdir, config, prepare=None):
    """Starts every run, in this order: checks `config` (its `validate()`, then `check_settings`) and the
    workdir, seeds Keras with `config.seed`, calls `prepare()` (what else may refuse the run: the strategy,
    the data the settings select, the model), and only then takes the workdir's lock, creates it and
    writes `config.json`. Returns `(workdir, what prepare returned)`: where anything before raises,
    nothing is written.

    A workdir whose checkpoints come from a run with other settings (only `RESUMABLE_CHANGES` and the
    Config's `RESUMABLE` may differ) is refused, since resuming would silently mix the two, and so is a
    workdir another training is using. A changed `epochs` is said out loud: the learning-rate schedule
    is rebuilt for the new count.
    """
    config.validate()
    check_settings(config)
    values = config.settings()
    workdir = Path(workdir)
    check_folder(workdir, "--workdir")
    saved_path, state = workdir / "config.json", workdir / "checkpoints" / STATE_FILE
    present = sorted(p.name for p in workdir.iterdir() if p.name != LOCK_FILE) if workdir.is_dir() else []
    saved = _saved_config(saved_path)
    if saved and set(saved) < set(values):  # settings added to the recipe since: the run had their defaults
        saved = {f.name: f.default for f in dataclasses.fields(config) if f.name not in saved} | saved
    if present and (saved is None or set(saved) != set(values)):
        shown = ", ".join(present[:3])
        raise OdezooError(
            f"--workdir {workdir} holds files ({shown}, ...) but no run of this recipe: odezoo would "
            "write its config.json, checkpoints and metrics.json there. Choose a new or empty folder."
        )
    if state.is_file() and saved is not None:
        changed = {
            k: (saved.get(k), v)
            for k, v in values.items()
            if saved.get(k) != v and k not in (*RESUMABLE_CHANGES, *config.RESUMABLE)
        }
        if changed:
            diff = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise OdezooError(
                f"{workdir} holds checkpoints of a run with other settings ({diff}); resuming would mix "
                "the two. Rerun with the same settings, or choose a new --workdir."
            )
        if "epochs" in saved and saved["epochs"] != values.get("epochs"):
            print(
                f"Note: epochs {saved['epochs']} -> {values['epochs']}: the learning-rate schedule is "
                f"rebuilt for {values['epochs']} epochs, and the run resumes from its checkpoint at the "
                "new schedule's rate for that step.",
                file=sys.stderr,
            )
    keras.utils.set_random_seed(config.seed)
    prepared = prepare() if prepare else None
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        _lock(workdir)
        write_json_atomic(saved_path, values)
    except OSError as error:
        raise OdezooError(
            f"Cannot use {workdir} as the run's workdir: {error.strerror or error}"
            f"{f' ({error.filename})' if error.filename else ''}. Choose a writable folder with free space."
        ) from None
    return workdir, prepared


def start_image_run(config, workdir, *, holdout=0):
    """What every image-classification run starts with (`start_run`): the strategy, the augmented training
    pipeline (without the last `holdout` training examples), refused where it makes no full batch, then
    `workdir/config.json`. Returns `(workdir, dataset spec, train dataset, steps per epoch, strategy)`."""

    def prepare():
        # before any TensorFlow op: MultiWorkerMirroredStrategy configures the runtime at startup
        strategy = make_strategy(config.strategy, config.tpu)
        train_ds, count = image_dataset(
            config.dataset,
            "train",
            batch_size=config.batch_size,
            training=True,
            limit=config.limit,
            seed=config.seed,
            data_dir=config.data_dir or None,
            holdout=holdout,
        )
        if count < config.batch_size:  # the training pipeline drops a partial last batch
            why = ", ".join(
                [f"limit={config.limit}"] * bool(config.limit) + [f"{holdout} held out"] * bool(holdout)
            )
            raise OdezooError(
                f"{count} training examples{f' ({why})' if why else ''} make no full batch of batch_size="
                f"{config.batch_size}, so the run would train 0 steps. Train on at least {config.batch_size} "
                "(raise `limit`, 0: all, or hold out fewer), or lower `batch_size`."
            )
        return strategy, train_ds, count // config.batch_size

    workdir, (strategy, train_ds, steps) = start_run(workdir, config, prepare)
    return workdir, get_dataset(config.dataset), train_ds, steps, strategy


# Settings that are shares in [0, 1), checked wherever a recipe has one.
FRACTIONS = (
    "momentum", "dropout", "attention_dropout", "activation_dropout", "death_rate", "label_smoothing"
)  # fmt: skip


def check_settings(config):
    """The checks every recipe's settings share: numbers are finite, a seed is one Keras takes, the
    `FRACTIONS` lie in [0, 1), a learning rate is positive, a strategy is one `make_strategy` knows (and
    `multi_worker`'s `TF_CONFIG` describes a cluster)."""
    for name, value in config.settings().items():
        if isinstance(value, float) and not math.isfinite(value):
            raise OdezooError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    if not 0 <= config.seed < 2**32:
        raise OdezooError(f"`seed` must be in 0 .. 2**32 - 1. Received: seed={config.seed!r}")
    for name in FRACTIONS:
        value = getattr(config, name, 0.0)
        if not 0 <= value < 1:
            raise OdezooError(f"`{name}` must lie in [0, 1). Received: {name}={value!r}")
    if getattr(config, "learning_rate", 1) <= 0:
        raise OdezooError(f"`learning_rate` must be > 0. Received: learning_rate={config.learning_rate!r}")
    check_strategy(getattr(config, "strategy", "auto"))
    if isinstance(config, ImageRunConfig):
        check_choice(config, "dtype", DTYPES)


def training_dtype(config):
    """The dtype policy an `ImageRunConfig` run builds its model with: `None` (float32) or `config.dtype`."""
    return None if config.dtype == "float32" else config.dtype


def mixed_precision(model, optimizer, config):
    """`optimizer`, ready to train `model` (built with `training_dtype(config)`) in `config.dtype`. Under a
    mixed policy the layer `"head"` computes in float32, so the loss sees float32 logits; under
    `mixed_float16` the optimizer is a `keras.optimizers.LossScaleOptimizer` (the loss is scaled so
    float16 gradients do not underflow)."""
    if config.dtype == "float32":
        return optimizer
    model.get_layer("head").dtype_policy = "float32"
    if config.dtype == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def float32_model(model, config):
    """`model` where `config.dtype` is float32, else a float32 copy with its (float32) weights: the model a
    mixed-precision run evaluates and writes as its preset, so `odezoo eval` and `odezoo.load` see it."""
    if config.dtype == "float32":
        return model
    copy = type(model).from_config({**model.get_config(), "dtype": None})
    copy.set_weights(model.get_weights())
    return copy


def _saved_config(path):
    """A run's `config.json` as a dict, or `None` where it is missing or not a run's."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


LOCK_FILE = "run.lock"
_LOCKS = {}  # workdir -> open lock file of this process


def _lock(workdir):
    """Holds an exclusive `flock` on `workdir/run.lock` while this process trains there (the kernel
    drops it when the process ends, so a killed run never leaves it stuck)."""
    import fcntl
    import os
    import time

    key = workdir.resolve()
    if key in _LOCKS:
        return
    handle = open(workdir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OdezooError(
            f"{workdir} is in use by another training ({holder}); wait for it to finish, or choose "
            "another --workdir."
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    _LOCKS[key] = handle


def release(workdir):
    """Releases this process's lock on `workdir` (`finish_run` does at the end of a run)."""
    handle = _LOCKS.pop(Path(workdir).resolve(), None)
    if handle is not None:
        handle.close()


def train_command(config):
    """`(recipe, command)`: the default config of `config`'s recipe module whose settings it changes least,
    and the `odezoo train` command that reproduces `config` from it."""
    defaults = sys.modules[type(config).__module__].CONFIGS  # the recipe module's default configs
    values = config.settings()
    changes = {
        base.preset_name(): {k: v for k, v in values.items() if getattr(base, k) != v and k != "preset"}
        for base in defaults
        if type(base) is type(config)
    }
    name = min(changes, key=lambda n: (len(changes[n]), n != config.preset_name()))
    sets = "".join(f" --set {k}={v}" for k, v in changes[name].items())
    return name, f"odezoo train {name}{sets} --workdir DIR"


def eval_command(config, dataset, split=None):
    """The `odezoo eval` command that re-scores the preset `config` writes on `dataset` (`split`), on
    the run's `limit` examples."""
    split = f" --split {split}" if split else ""
    return f"odezoo eval {config.preset_name()} --dataset {dataset}{split}" + (
        f" --limit {config.limit}" if config.limit else ""
    )


def test_metric(config, result, metric, command, key=None, **extra):
    """One `metadata.json` metric record: `result[key or metric]` on the test split of `config.dataset`."""
    return {
        "dataset": config.dataset,
        "split": "test",
        "metric": metric,
        "value": result[key or metric],
        "num_examples": result["num_examples"],
        "command": command,
        **extra,
    }


def finish_run(workdir, model, config, *, summary, history, metadata, assets=None, tokenizer=None):
    """Writes the preset folder `workdir/<preset>` (recipe, config, command and history in its
    metadata; `assets` and the files of `tokenizer.save`, if given) and `workdir/metrics.json`
    atomically; returns `summary` with `preset_dir`."""
    recipe, command = train_command(config)
    preset = config.preset_name()
    with tempfile.TemporaryDirectory() as staging:
        folder = model.save_pretrained(
            Path(workdir) / preset,
            metadata={
                "preset": preset,
                "recipe": recipe,
                "recipe_config": config.settings(),
                "train_command": command,
                "history": history,
                **metadata,
            },
            assets={**(assets or {}), **(tokenizer.save(staging) if tokenizer else {})} or None,
        )
    summary = {**summary, "preset_dir": str(folder)}
    write_json_atomic(Path(workdir) / "metrics.json", {**summary, "history": history})
    release(workdir)
    return summary
