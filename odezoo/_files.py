"""Writing files so that a reader never sees half of one (a temporary file beside the target, moved
into place only when complete, removed when anything fails), never replaces a file unasked
(`check_output`) and never lands outside its folder (`inside`); strict JSON; sizes in messages."""

import contextlib
import json
import math
import os
from pathlib import Path, PurePosixPath

from odezoo.errors import OdezooError


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Yields a file opened with `mode` that replaces `path` when the block ends without an error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_output(path, write, done=""):
    """Creates `path`'s folder and writes `path` atomically through `write(file)`, a binary file; a failure
    of the file system is one `OdezooError` naming the path, `done` (what was written before it) and what
    to do."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            write(f)
    except OSError as error:
        raise OdezooError(
            f"Cannot write {path}: {error.strerror or error}{done}. Free some space or choose a "
            "writable --out."
        ) from None
    return path


def json_text(obj, **options):
    """`obj` as strict JSON (`json.dumps` with `options`), non-ASCII characters kept readable. A NaN or
    an infinity, which strict JSON has no number for, is written as null; a dict `obj` then records
    which ones were under `"non_finite"`: `{"history[2].loss": "nan"}`."""
    found = {}

    def finite(value, where):
        if isinstance(value, dict):
            return {k: finite(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            found[where] = str(value)
            return None
        return value

    obj = finite(obj, "")
    if found and isinstance(obj, dict):
        obj["non_finite"] = found
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, **options)


def write_json_atomic(path, obj):
    """Writes `obj` as indented, key-sorted strict JSON (`json_text`) to `path` atomically
    (`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(json_text(obj, indent=2, sort_keys=True) + "\n")


def check_output(path, overwrite, flag, kind="file"):
    """Refuses, before anything runs, the output file `path` (named in messages as `flag path`) where a
    folder is, inside a file, or where a file is unless `overwrite` (the CLI's `--overwrite`)."""
    path = Path(path)
    if path.is_dir():
        raise OdezooError(f"{flag} {path} is a folder; give the name of the {kind} to write.")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OdezooError(f"{flag} {path} exists; pass --overwrite to replace it.")
    check_folder(path.parent, f"{flag}'s folder")


def inside(
    folder, name, what, *, reading=False, fix="give a relative path below it, without '..' or a leading '/'"
):
    """`folder / name`, where `name` (given as `what`, e.g. "Asset name") must be a relative name inside
    `folder`: not empty or absolute, no `..` part (else the message ends with `fix`); and, unless
    `reading` (a folder's files may be links that lead out of it, as the Hugging Face cache's do), no
    link on the way that leads out of `folder`, so a write never lands elsewhere."""
    text = os.fspath(name)
    parts = PurePosixPath(text).parts
    if not parts or PurePosixPath(text).is_absolute() or ".." in parts:
        raise OdezooError(f"{what} {text!r} is not a name inside the folder {folder}: {fix}.")
    path = Path(folder, *parts)
    if not reading:
        real, root = path.resolve(), Path(folder).resolve()
        if not real.is_relative_to(root):
            raise OdezooError(
                f"{what} {text!r} leads out of the folder {folder} through a link (to {real}); odezoo "
                "writes only inside it: remove the link or choose another name."
            )
    return path


def sizes(*counts):
    """Byte counts in MB (GB from 1e9) with the fewest decimals, up to 3, that tell them apart:
    `sizes(2.1e6, 2.3e6) == ["2.1 MB", "2.3 MB"]`."""
    unit, scale = ("GB", 1e9) if max(counts) >= 1e9 else ("MB", 1e6)
    for decimals in range(4):
        shown = [f"{count / scale:.{decimals}f} {unit}" for count in counts]
        if len(set(shown)) == len(set(counts)):
            break
    return shown


def check_folder(path, flag):
    """Raises `OdezooError` where the folder `path` (given as option `flag`, e.g. `--out`) is a file or lies
    inside one, before anything is written."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or existing.is_dir():
        return
    within = "" if existing == path else f" lies inside {existing}, which"
    raise OdezooError(f"{flag} {path}{within} is a file; give a folder (it is created if missing).")
