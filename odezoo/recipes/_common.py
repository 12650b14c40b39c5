"""The run machinery every recipe shares: the start of a run (settings checked, then the settings
guard), the `odezoo train` command that reproduces a config, and the end of a run (the preset
folder and an atomic `metrics.json`). Checkpoints: `odezoo.training.Checkpoints`.
"""

import dataclasses
import json
from pathlib import Path

from odezoo.errors import OdezooError
from odezoo.training import write_json_atomic

# Settings a run may change when it resumes: they do not alter what the checkpoints hold.
RESUMABLE_CHANGES = ("epochs", "strategy", "tpu", "data_dir", "preset", "eval_trajectories", "eval_times")


def start_run(workdir, config):
    """Checks `config` (its `validate()`), then creates `workdir` and writes `config.json`.

    A workdir whose checkpoints come from a run with other settings (only `RESUMABLE_CHANGES` may
    differ) is refused, since resuming would silently mix the two; nothing is written before
    these checks pass.
    """
    config.validate()
    values = dataclasses.asdict(config)
    workdir = Path(workdir)
    saved_path, state = workdir / "config.json", workdir / "checkpoints" / "state.json"
    if state.is_file() and saved_path.is_file():
        saved = json.loads(saved_path.read_text())
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
    workdir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(saved_path, values)
    return workdir


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


def finish_run(workdir, model, config, *, summary, history, metadata, assets=None):
    """Writes the preset folder `workdir/<preset>` (recipe, config, command and history in its
    metadata) and `workdir/metrics.json` atomically; returns `summary` with `preset_dir`."""
    recipe, command = train_command(config)
    preset = config.preset_name()
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
        assets=assets,
    )
    summary = {**summary, "preset_dir": str(folder)}
    write_json_atomic(Path(workdir) / "metrics.json", {**summary, "history": history})
    return summary
