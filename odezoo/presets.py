"""The preset registry: named, pretrained configurations of the zoo's models, as data.

Each model family registers its own from its `<family>_presets.py`: a config, where the weights
live and their sha256, provenance. Resolving a name to a folder and loading it: `odezoo.zoo`.
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
        model_cls: the model class that loads it (its `TASK` is the preset's task).
        config: the model's constructor arguments.
        description: one line for `odezoo list`.
        sha256: sha256 of `model.weights.h5`.
        hf_repo: the Hugging Face Hub repository that hosts the preset folder.
        dataset: the data set it was trained on.
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

    @property
    def task(self):
        return self.model_cls.TASK


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
