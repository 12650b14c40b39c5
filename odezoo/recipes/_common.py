"""The run machinery every recipe shares: the start of a run (settings checked, then the settings
guard), the `odezoo train` command that reproduces a config, and the end of a run (the preset
folder and an atomic `metrics.json`). Checkpoints: `odezoo.training.write_checkpoint`.
"""

import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path

from odezoo._files import check_folder, write_json_atomic
from odezoo.errors import OdezooError
from odezoo.training import STATE_FILE, check_strategy

# Settings a run may change when it resumes: they do not alter what the checkpoints hold.
RESUMABLE_CHANGES = ("epochs", "strategy", "tpu", "data_dir", "preset", "eval_trajectories", "eval_times")


def start_run(workdir, config):
    """Checks `config` (its `validate()`, then `check_settings`), then takes the workdir's lock, creates
    it and writes `config.json`.

    A workdir whose checkpoints come from a run with other settings (only `RESUMABLE_CHANGES` may
    differ) is refused, since resuming would silently mix the two, and so is a workdir another
    training is using; nothing is written before these checks pass. A changed `epochs` is said
    out loud: the learning-rate schedule is rebuilt for the new count.
    """
    config.validate()
    check_settings(config)
    values = dataclasses.asdict(config)
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
            if saved.get(k) != v and k not in RESUMABLE_CHANGES
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
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        _lock(workdir)
        write_json_atomic(saved_path, values)
    except OSError as error:
        raise OdezooError(
            f"Cannot use {workdir} as the run's workdir: {error.strerror or error}"
            f"{f' ({error.filename})' if error.filename else ''}. Choose a writable folder with free space."
        ) from None
    return workdir


def check_settings(config):
    """The checks every recipe's settings share: numbers are finite, a learning rate is positive, a
    strategy is one `make_strategy` knows."""
    for name, value in dataclasses.asdict(config).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise OdezooError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    if getattr(config, "learning_rate", 1) <= 0:
        raise OdezooError(f"`learning_rate` must be > 0. Received: learning_rate={config.learning_rate!r}")
    check_strategy(getattr(config, "strategy", "auto"))


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
    """`(recipe, command)`: the registered recipe of `config`'s kind whose defaults it changes least,
    and the `odezoo train` command that reproduces `config` from it."""
    from odezoo.recipes import RECIPES

    values = dataclasses.asdict(config)
    changes = {
        name: {k: v for k, v in values.items() if getattr(base, k) != v and k != "preset"}
        for name, (_, base) in RECIPES.items()
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
                "recipe_config": dataclasses.asdict(config),
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
