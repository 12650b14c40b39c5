"""Writing files so that a reader never sees half of one: a temporary file beside the target,
moved into place only when complete, removed when anything fails."""

import contextlib
import os
from pathlib import Path


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
