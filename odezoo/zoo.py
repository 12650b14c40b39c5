"""Resolving and loading, in one place: `odezoo.load`, `from_pretrained`, the CLI and export all
come here.

A name resolves, in order, to: an existing local folder, the copy bundled with odezoo, the
Hugging Face Hub (through its cache; see `odezoo.hub`).
"""

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from odezoo.errors import OdezooError
from odezoo.hub import hub_snapshot
from odezoo.presets import Preset, bundled_folder, get_preset
from odezoo.pretrained import load_folder, read_metadata, verify_folder


@dataclass(frozen=True)
class Resolved:
    """A preset folder found for a name, with the registered preset it was named by (if any)."""

    folder: Path
    preset: Preset | None = None
    revision: str | None = None

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

    def load(self, *, expected_cls=None, load_weights=True, **overrides):
        """Builds the model; a registered preset (no revision pinned) must carry this release's weights."""
        sha256, name = self.release
        return load_folder(
            self.folder,
            metadata=self.metadata,
            expected_cls=expected_cls,
            load_weights=load_weights,
            expected_sha256=sha256,
            release=name,
            **overrides,
        )


def resolve(name_or_path, *, revision=None) -> Resolved:
    """The preset folder of a name, a local folder or `hf://org/repo`, downloaded if needed."""
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
    path = Path(text).expanduser()
    if path.is_dir():
        return Resolved(path)
    if text.startswith("hf://"):
        return Resolved(hub_snapshot(text[len("hf://") :], revision), revision=revision)
    if os.sep in text or text.startswith("."):
        raise OdezooError(f"No preset folder at {text!r}: the path does not exist or is not a folder.")
    preset = get_preset(text)
    bundled = bundled_folder(text) if revision is None else None
    return Resolved(bundled or hub_snapshot(preset.hf_repo, revision), preset, revision)


def load(name_or_path, *, expected_cls=None, revision=None, load_weights=True, **overrides):
    """Loads a preset, a local preset folder or `hf://org/repo` as the right model class.

    Args:
        name_or_path: a preset name (`odezoo.list_presets()`), a folder or `"hf://<org>/<repo>"`.
        expected_cls: refuse a folder that holds another class (`from_pretrained` passes its own).
        revision: a Hub branch, tag or commit; skips the bundled copy.
        load_weights: `False` builds the architecture only.
        **overrides: config changes, e.g. `num_classes=K` for fine-tuning (the task's head is new,
            the trunk is loaded) or `dtype="float64"`.
    """
    return resolve(name_or_path, revision=revision).load(
        expected_cls=expected_cls, load_weights=load_weights, **overrides
    )
