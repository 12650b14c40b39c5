"""Keeps what native libraries (TensorFlow, TFLite, ONNX converters) print off the terminal."""

import contextlib
import os
import sys
import tempfile

from odezoo.errors import OdezooError


@contextlib.contextmanager
def captured_native_output():
    """Sends file descriptors 1 and 2 to a temporary file for the block; replays it if the block
    fails unexpectedly (not with an `OdezooError`, whose message is the one to show).

    Native start-up and conversion logs would otherwise mix into the CLI's JSON on stdout
    and its one-line errors on stderr.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
        try:
            yield
        except OdezooError:  # an expected failure: its own message says what went wrong
            raise
        except BaseException:
            _restore(saved)
            log.seek(0)
            os.write(2, log.read())
            raise
        finally:
            _restore(saved)
            for copy in saved.values():
                os.close(copy)


def _restore(saved):
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, copy in saved.items():
        os.dup2(copy, fd)
