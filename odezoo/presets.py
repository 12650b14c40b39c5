"""The preset registry, and where a preset's folder is.

Each model family lists its presets in `odezoo/models/<family>/presets.json` (name -> the model
class's name, the weights' sha256, description, data set, paper); the registry reads those files
and nothing else, so listing presets imports no model and starts no TensorFlow. The model's config
is the preset folder's `config.json`. `resolve` finds the folder of a name: the copy bundled with
odezoo or a Hugging Face Hub snapshot of a registered preset, or a local folder given as a path (a
registered name never means a local folder). Building the model: `odezoo.pretrained`.
"""

import difflib
import fnmatch
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from odezoo.errors import OdezooError
from odezoo.hub import hub_snapshot
from odezoo.preset_folder import read_metadata, verify_folder

HF_ORG = "odezoo"
PACKAGE_DIR = Path(__file__).resolve().parent
# Bundled presets: inside an installed wheel, else the clone's top-level weights/.
BUNDLED_ROOTS = (PACKAGE_DIR / "_bundled", PACKAGE_DIR.parent / "weights")
REGISTRY_FILE = "presets.json"  # in each family folder


@dataclass(frozen=True)
class Preset:
    """One registered preset.

    Args:
        name: `<arch><size>_[<variant>_]<dataset>`, unique across the zoo.
        family: the folder under `odezoo/models/` that holds the model.
        model: the model class's name.
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
    description: str
    sha256: str
    dataset: str
    hf_repo: str = ""
    license: str = "apache-2.0"
    paper: str = ""


_REGISTRY: dict[str, Preset] = {}


def register(family, presets: dict[str, dict]) -> None:
    """Registers `presets` (name -> keyword arguments of `Preset`) of the family folder `family`."""
    for name, spec in presets.items():
        if name in _REGISTRY:
            raise OdezooError(f"Preset {name!r} is registered twice (family {family!r}).")
        _REGISTRY[name] = Preset(name=name, family=family, **{"hf_repo": f"{HF_ORG}/{name}", **spec})


def _registry():
    if not _REGISTRY:
        for path in sorted((PACKAGE_DIR / "models").glob(f"*/{REGISTRY_FILE}")):
            register(path.parent.name, json.loads(path.read_text()))
    return _REGISTRY


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the registered presets matching the shell-style `pattern`, sorted."""
    if not isinstance(pattern, str):
        raise OdezooError(
            "list_presets takes a shell-style name pattern (str), e.g. list_presets('*fashion_mnist'). "
            f"Received: {pattern!r} ({type(pattern).__name__})"
        )
    return sorted(name for name in _registry() if fnmatch.fnmatch(name, pattern))


def get_preset(name: str) -> Preset:
    """The registered preset `name`; an unknown name raises with the closest names."""
    if not isinstance(name, str):
        raise OdezooError(
            f"A preset name is a string such as 'lm_resnet20_fashion_mnist'. Received: {name!r} "
            f"({type(name).__name__})"
        )
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


@dataclass(frozen=True)
class Resolved:
    """A preset folder found for a name, with the registered preset it was named by (if any)."""

    folder: Path
    preset: Preset | None = None
    revision: str | None = None
    ignored_folder: Path | None = None  # a local folder of the preset's name, which the name does not mean

    @property
    def note(self):
        """What to tell the user where a local folder of the preset's name was not used, else `None`."""
        if self.ignored_folder is None:
            return None
        name = self.ignored_folder.name
        return (
            f"{name!r} is the registered preset, so {self.folder} is used, not the folder "
            f"{self.ignored_folder}; for that folder, name it as a path: ./{name}"
        )

    @cached_property
    def metadata(self):
        """`metadata.json`, read once."""
        return read_metadata(self.folder)

    @property
    def name(self):
        return self.metadata.get("preset") or self.folder.name

    @property
    def release(self):
        """`(weights sha256, preset name)` this release of odezoo names for the folder, or `(None, "")`
        (a folder, a Hub repository, or a pinned revision)."""
        if self.preset is not None and self.revision is None:
            return self.preset.sha256, self.preset.name
        return None, ""

    def verify(self):
        """Checks every file of the folder against `metadata.json` (and the release's weights)."""
        sha256, name = self.release
        verify_folder(self.folder, self.metadata, expected_sha256=sha256, release=name)


def resolve(name_or_path, *, revision=None) -> Resolved:
    """The preset folder of a name, a local folder or `hf://org/repo`, downloaded if needed.

    A registered preset's name (`list_presets()`) always means that preset (its bundled copy, else the
    Hub's), even where the working directory holds a folder of that name (`Resolved.ignored_folder`,
    `Resolved.note`). A local folder is used where it is given as a path: a `pathlib.Path`, or text
    with a separator or starting with `.` or `~` (`./name`, `name/`, `runs/name`, `/abs/name`); or by
    a name that is no registered preset.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise OdezooError(
            "Pass a preset name (`odezoo list`), a preset folder or 'hf://<org>/<repo>'. Received: "
            f"{name_or_path!r} ({type(name_or_path).__name__})"
        )
    text = os.fspath(name_or_path)
    if not text.strip():
        raise OdezooError(
            "No preset given: pass a preset name (`odezoo list`), a folder or hf://<org>/<repo>."
        )
    if text.startswith("hf://"):
        return Resolved(hub_snapshot(text[len("hf://") :], revision), revision=revision)
    path = Path(text).expanduser()
    as_path = not isinstance(name_or_path, str) or os.sep in text or text.startswith((".", "~"))
    if (as_path or text not in _registry()) and path.is_dir():
        if revision is not None:
            raise OdezooError(
                f"--revision / revision= picks a Hub version; {text!r} is a local folder, which has none. "
                f"Received: revision={revision!r}. Drop the revision, or name the preset or hf://<org>/<repo>."
            )
        return Resolved(path.absolute())
    if as_path:
        raise OdezooError(f"No preset folder at {text!r}: the path does not exist or is not a folder.")
    preset = get_preset(text)  # an unknown name raises, with the closest names
    bundled = bundled_folder(text) if revision is None else None
    ignored = path.absolute() if path.is_dir() else None
    return Resolved(bundled or hub_snapshot(preset.hf_repo, revision), preset, revision, ignored)
