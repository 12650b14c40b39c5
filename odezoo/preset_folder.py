"""The preset folder format: its file names, `metadata.json` (written with the sha256 of every other
file of the folder, read back and verified before a model is built), JSON read and written.

A preset folder holds `config.json` (the serialised model), `model.weights.h5`, `metadata.json`
(task, versions, parameter count, recipe, metrics, and the sha256 of every other file of the
folder), `README.md` (the model card) and optional assets (a vocabulary, BPE codes, a plot).
"""

import hashlib
import json
from pathlib import Path

from odezoo._files import inside, json_text
from odezoo._version import __version__
from odezoo.errors import OdezooError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
# The files of the format, which `save_pretrained` writes itself; every other file a folder lists is an asset.
FORMAT_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, CARD_FILE)
# What a folder written before odezoo 0.2 holds (its `metadata.json` lists no files): besides the format's
# files, a PDE preset's plot.
LEGACY_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, "rollout.png")


def preset_files(folder):
    """The files of `folder` that odezoo wrote, `{relative name: the sha256 it recorded, or None}`, if it
    is an odezoo preset folder, else `None`: `metadata.json` names an odezoo version, and lists them
    with their sha256 (folders written before odezoo 0.2 list none: then the four files of the format
    and a PDE preset's `rollout.png`, the weights with `weights_sha256`)."""
    try:
        metadata = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or "odezoo_version" not in metadata:
        return None
    listed = metadata.get("files") or {
        **dict.fromkeys(LEGACY_FILES),
        WEIGHTS_FILE: metadata.get("weights_sha256"),
    }
    return {METADATA_FILE: None, **listed}


def asset_files(folder, metadata):
    """`{relative name: path}` of the assets of the preset folder `folder` (`metadata` its
    `metadata.json`): the files it lists besides `FORMAT_FILES` (a tokenizer's files, a plot), each
    checked against its sha256; a folder written before odezoo 0.2 lists none: then its `rollout.png`,
    if it has one."""
    folder = Path(folder)
    listed = metadata.get("files")
    if not listed:
        listed = {name: None for name in LEGACY_FILES if (folder / name).is_file()}
    assets = {name: digest for name, digest in listed.items() if name not in FORMAT_FILES}
    _check_present(folder, assets)
    _check_sha256(folder, {name: digest for name, digest in assets.items() if digest is not None})
    return {name: folder / name for name in assets}


def write_metadata(folder, metadata):
    """Writes `metadata.json` with the sha256 of every other file of `folder` under `"files"`."""
    folder = Path(folder)
    files = {
        path.relative_to(folder).as_posix(): sha256_of(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != METADATA_FILE
    }
    write_json(folder / METADATA_FILE, {**metadata, "files": files})


def read_metadata(folder):
    """`metadata.json` of a preset folder (a missing or damaged one raises saying so)."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file() and not (Path(folder) / CONFIG_FILE).is_file():
        raise OdezooError(
            f"{folder} is not a preset folder (it holds no {METADATA_FILE} or {CONFIG_FILE}): pass a preset "
            "name (`odezoo list`), a folder written by `save_pretrained` or hf://<org>/<repo>."
        )
    if not path.is_file():
        raise OdezooError(
            f"Preset folder {folder} is missing {METADATA_FILE}: it is incomplete. Delete it and "
            "download it again, or write it anew with `save_pretrained`."
        )
    return read_json(path)


def verify_folder(folder, metadata, *, weights=True, expected_sha256=None, release=""):
    """Checks every file `metadata["files"]` lists against its sha256 (folders written before odezoo
    0.2 list none: then the weights against `weights_sha256`); `expected_sha256` is the registry's
    weights sha256 for a named preset of this release."""
    folder = Path(folder)
    listed = dict(metadata.get("files") or {WEIGHTS_FILE: metadata.get("weights_sha256")})
    if not weights:
        listed.pop(WEIGHTS_FILE, None)
    needed = [CONFIG_FILE] + ([WEIGHTS_FILE] if weights else [])
    _check_present(folder, [*needed, *listed])
    if expected_sha256 is not None and metadata.get("weights_sha256") != expected_sha256:
        raise OdezooError(
            f"{folder / METADATA_FILE} records weights sha256 {metadata.get('weights_sha256')} but preset "
            f"{release!r} of odezoo {__version__} is {expected_sha256}: the folder is from another "
            "release. Pass `revision=` for it, or delete it and download again."
        )
    _check_sha256(folder, listed)


def _check_present(folder, names):
    """Raises naming the files of `names` that `folder` lacks, or a name that leaves `folder`."""
    what = f"{folder / METADATA_FILE} lists the file"
    fix = "the folder is damaged or forged: delete it and download it again"
    paths = {name: inside(folder, name, what, reading=True, fix=fix) for name in names}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        raise OdezooError(
            f"Preset folder {folder} is missing {', '.join(missing)}: it is incomplete. Delete it and "
            "download it again, or write it anew with `save_pretrained`."
        )


def _check_sha256(folder, listed):
    """Raises where a file of `folder` does not have the sha256 `listed` records for it."""
    for name, expected in listed.items():
        actual = sha256_of(folder / name)
        if actual != expected:
            raise OdezooError(
                f"File {folder / name} is corrupt or truncated: its sha256 is {actual[:16]}..., expected "
                f"{(expected or 'none recorded')[:16]}.... Delete the preset folder and download it again, "
                "or write it anew with `save_pretrained`."
            )


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OdezooError(
            f"{path} is not valid JSON ({error}); the preset folder is damaged: download it again."
        ) from None


def write_json(path, obj):
    """Writes `obj` as indented, key-sorted strict JSON (`odezoo._files.json_text`)."""
    Path(path).write_text(json_text(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
