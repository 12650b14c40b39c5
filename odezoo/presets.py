"""The preset registry: named, pretrained configurations of the zoo's models.

Presets are data (a config, where the weights live, their sha256, provenance); each
model family registers its own from its `<family>_presets.py`.
"""

import difflib
import fnmatch
from dataclasses import dataclass

from odezoo.errors import OdezooError

HF_ORG = "odezoo"


@dataclass(frozen=True)
class Preset:
    """One registered preset.

    Args:
        name: `<arch><size>_<dataset>[_<variant>]`, unique across the zoo.
        model_cls: the model class that loads it.
        config: the model's constructor arguments.
        description: one line for `odezoo list`.
        sha256: sha256 of `model.weights.h5`.
        hf_repo: the Hugging Face Hub repository that hosts the preset folder.
        dataset: the data set it was trained on (a name in `odezoo.data.DATASETS`).
        license: SPDX-style licence of the weights.
        paper: the paper it implements.
    """

    name: str
    model_cls: type
    config: dict
    description: str
    sha256: str
    dataset: str
    hf_repo: str = ""
    license: str = "apache-2.0"
    paper: str = ""


_REGISTRY: dict[str, Preset] = {}


def register(model_cls, presets: dict[str, dict]) -> None:
    """Registers `presets` (name -> keyword arguments of `Preset`) for `model_cls`."""
    own = dict(getattr(model_cls, "presets", {}) if "presets" in vars(model_cls) else {})
    for name, spec in presets.items():
        if name in _REGISTRY:
            raise ValueError(f"Preset {name!r} is registered twice.")
        spec = {"hf_repo": f"{HF_ORG}/{name}", **spec}
        preset = Preset(name=name, model_cls=model_cls, **spec)
        _REGISTRY[name] = own[name] = preset
    model_cls.presets = own


def _registry():
    import odezoo.models  # noqa: F401  (each family registers its presets on import)

    return _REGISTRY


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the registered presets matching the shell-style `pattern`, sorted."""
    return sorted(name for name in _registry() if fnmatch.fnmatch(name, pattern))


def get_preset(name: str) -> Preset:
    """The registered preset `name`; an unknown name raises with the closest names."""
    try:
        return _registry()[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise OdezooError(
            f"Unknown preset {name!r}.{hint} `odezoo list` shows the {len(_REGISTRY)} presets; "
            "a local preset folder or 'hf://<org>/<repo>' also works."
        ) from None


def load(name_or_path: str, **kwargs):
    """Loads a preset, a local preset folder or `hf://org/repo` as the right model class.

    Keyword arguments are those of `from_pretrained` (`revision`, `load_weights` and
    config overrides such as `num_classes`).
    """
    from odezoo.pretrained import load_pretrained

    return load_pretrained(name_or_path, expected_cls=None, **kwargs)


def preset_table(names=None) -> str:
    """The README's Markdown table of presets, with the headline result of bundled copies."""
    from odezoo.pretrained import METADATA_FILE, bundled_folder, read_json

    rows = [
        "| preset | model | data | result (ours) | parameters | description |",
        "|---|---|---|---|---|---|",
    ]
    for name in names or list_presets():
        preset = get_preset(name)
        folder = bundled_folder(name)
        meta = read_json(folder / METADATA_FILE) if folder else {}
        params = f"{meta['parameter_count']:,}" if "parameter_count" in meta else "—"
        cells = [
            f"`{name}`",
            preset.model_cls.__name__,
            preset.dataset,
            headline(meta),
            params,
            preset.description,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def headline(metadata) -> str:
    """A preset's headline result from its metadata: test accuracy (and accuracy under attack), or a
    PDE model's t = 1 rollout error."""
    metrics = metadata.get("metrics", [])
    robust = next((m for m in metrics if m["metric"] == "robust_accuracy"), None)
    for m in metrics:
        if m["metric"] == "accuracy" and m["split"] == "test":
            attacked = f", {robust['value']:.2%} under {robust['attack'].split(',')[0]}" if robust else ""
            return f"{m['value']:.2%} test accuracy{attacked}"
        if m["metric"] == "median relative error, t=1":
            return f"{m['value']:.2%} median rollout error at t = 1"
    return "—"
