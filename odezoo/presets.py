"""The preset registry: named, pretrained configurations of the zoo's models, as data.

Each model family lists its presets in `odezoo/models/<family>/<family>_presets.py` (`PRESETS`:
the model class by name, its config, the weights' sha256, provenance); the registry reads those
files and nothing else, so listing presets starts no TensorFlow. Resolving a name to a folder and
loading it: `odezoo.zoo`.
"""

import difflib
import fnmatch
import importlib
from dataclasses import dataclass
from pathlib import Path

from odezoo.errors import OdezooError

HF_ORG = "odezoo"
PACKAGE_DIR = Path(__file__).resolve().parent
# Bundled presets: inside an installed wheel, else the clone's top-level weights/.
BUNDLED_ROOTS = (PACKAGE_DIR / "_bundled", PACKAGE_DIR.parent / "weights")


@dataclass(frozen=True)
class Preset:
    """One registered preset.

    Args:
        name: `<arch><size>_<dataset>[_<variant>]`, unique across the zoo.
        family: the folder under `odezoo/models/` that holds the model.
        model: the model class's name (`model_cls` imports it).
        config: the model's constructor arguments.
        description: one line for `odezoo list`.
        sha256: sha256 of `model.weights.h5`.
        dataset: the data set it was trained on.
        hf_repo: the Hugging Face Hub repository that hosts the preset folder.
        license: SPDX-style licence of the weights.
        paper: the paper it implements.
    """

    name: str
    family: str
    model: str
    config: dict
    description: str
    sha256: str
    dataset: str
    hf_repo: str = ""
    license: str = "apache-2.0"
    paper: str = ""

    @property
    def model_cls(self):
        return getattr(importlib.import_module(f"odezoo.models.{self.family}"), self.model)

    @property
    def task(self):
        return self.model_cls.task_of(self.config)


_REGISTRY: dict[str, Preset] = {}


def register(family, presets: dict[str, dict]) -> None:
    """Registers `presets` (name -> keyword arguments of `Preset`) of the family folder `family`."""
    for name, spec in presets.items():
        if name in _REGISTRY:
            raise ValueError(f"Preset {name!r} is registered twice.")
        _REGISTRY[name] = Preset(name=name, family=family, **{"hf_repo": f"{HF_ORG}/{name}", **spec})


def _registry():
    if not _REGISTRY:
        from odezoo.models import families

        for family in families():
            try:
                module = importlib.import_module(f"odezoo.models.{family}.{family}_presets")
            except ModuleNotFoundError:
                continue  # a family without presets
            register(family, module.PRESETS)
    return _REGISTRY


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the registered presets matching the shell-style `pattern`, sorted."""
    return sorted(name for name in _registry() if fnmatch.fnmatch(name, pattern))


def get_preset(name: str) -> Preset:
    """The registered preset `name`; an unknown name raises with the closest names."""
    try:
        return _registry()[name]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise OdezooError(
            f"Unknown preset {name!r}.{hint} `odezoo list` shows the {len(_REGISTRY)} presets; "
            "a local preset folder or 'hf://<org>/<repo>' also works."
        ) from None


def bundled_folder(name):
    """The preset folder `name` shipped with odezoo, or `None`."""
    return next((root / name for root in BUNDLED_ROOTS if (root / name / "config.json").is_file()), None)
