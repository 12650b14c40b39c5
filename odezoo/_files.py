"""Writing files so that a reader never sees half of one: a temporary file beside the target,
moved into place only when complete, removed when anything fails."""

import contextlib
import json
import os
from pathlib import Path

from odezoo.errors import OdezooError


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Yields a file opened with `mode` that replaces `path` when the block ends without an error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path, obj):
    """Writes `obj` as indented, key-sorted JSON to `path` atomically (`atomic_write`)."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def check_folder(path, flag):
    """Raises `OdezooError` where the folder `path` (given as option `flag`, e.g. `--out`) is a file or lies
    inside one, before anything is written."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or existing.is_dir():
        return
    inside = "" if existing == path else f" lies inside {existing}, which"
    raise OdezooError(f"{flag} {path}{inside} is a file; give a folder (it is created if missing).")
