"""Loading, in one place: `odezoo.load`, the CLI and export build models here.

A registered preset's name resolves (`odezoo.presets.resolve`) to the copy bundled with odezoo, else
the Hugging Face Hub (through its cache; see `odezoo.hub`), never to a local folder of that name; a
local folder is named as a path (`./name`, `runs/name`) or by a name that is no preset.
`Model.from_pretrained` loads the same way, for its own class.
"""

import importlib

from odezoo.models import import_all
from odezoo.preset_folder import CONFIG_FILE, read_json, read_metadata
from odezoo.presets import Resolved as Resolved
from odezoo.presets import bundled_folder, get_preset, list_presets
from odezoo.presets import resolve as resolve
from odezoo.pretrained import load_preset


def load(name_or_path, *, expected_cls=None, revision=None, load_weights=True, **overrides):
    """Loads a preset, a local preset folder or `hf://org/repo` as the right model class.

    Args:
        name_or_path: a preset name (`odezoo.list_presets()`), a folder (`"./name"`, a `Path`) or
            `"hf://<org>/<repo>"`.
        expected_cls: refuse a folder that holds another class (`from_pretrained` passes its own).
        revision: a Hub branch, tag or commit; skips the bundled copy.
        load_weights: `False` builds the architecture only.
        **overrides: config changes, e.g. `num_classes=K` for fine-tuning (the task's head is new,
            the trunk is loaded) or `dtype="float64"`.
    """
    return load_resolved(
        resolve(name_or_path, revision=revision),
        expected_cls=expected_cls,
        load_weights=load_weights,
        **overrides,
    )


def load_resolved(resolved, **kwargs):
    """`pretrained.load_preset` (keyword arguments as `load_folder`'s) that imports every family where a
    folder's `config.json` names a module that has since moved."""
    return load_preset(resolved, import_classes=import_all, **kwargs)


def preset_class(name):
    """The model class of the registered preset `name` (its family is imported)."""
    preset = get_preset(name)
    return getattr(importlib.import_module(f"odezoo.models.{preset.family}"), preset.model)


def preset_task(name):
    """The task (`odezoo.tasks.Task`) of the registered preset `name`, as its bundled folder's config
    builds it (else its class's)."""
    folder = bundled_folder(name)
    config = read_json(folder / CONFIG_FILE)["config"] if folder else {}
    cls = preset_class(name)
    return cls.task_of(cls.complete_config(config)).instance()


def preset_table(names=None) -> str:
    """The README's Markdown table of presets, with the headline result of bundled copies."""
    rows = [
        "| preset | model | task | data | result (ours) | parameters | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names or list_presets():
        preset = get_preset(name)
        folder = bundled_folder(name)
        meta = read_metadata(folder) if folder else {}
        task = preset_task(name)
        params = f"{meta['parameter_count']:,}" if "parameter_count" in meta else "—"
        cells = [
            f"`{name}`",
            preset.model,
            task.name.replace("_", " "),
            preset.dataset,
            task.headline(meta),
            params,
            preset.description,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
