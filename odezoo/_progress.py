"""Progress of a long loop, wherever its output goes: a tqdm bar on a terminal; elsewhere (a pipe, a log
file, CI) a line every `every` seconds and a summary at the end, so a long command never sits silent."""

import sys
import time


def progress(iterable=None, *, total=None, desc, unit="it", stream=None, every=30.0):
    """`iterable` wrapped (or, without one, a counter that `update(n)` advances), reporting on `stream`
    (default `sys.stderr`).

    On a terminal: a tqdm bar. Otherwise: `desc: done/total unit, rate unit/s, T s` every `every` seconds
    and `desc: done unit in T s (rate unit/s)` when it closes (the iteration ends, `close()`, or the end
    of a `with` block).

    Args:
        iterable: what to iterate over; `None`: count with `update(n)`.
        total: the expected count (default `len(iterable)` where it has one).
        desc: what is being done ("translating").
        unit: what is counted, plural ("sentences").
        stream: where to report.
        every: seconds between the lines off a terminal.
    """
    stream = sys.stderr if stream is None else stream
    if getattr(stream, "isatty", lambda: False)():
        from tqdm.auto import tqdm  # deferred: heavy

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream)
    if total is None:
        try:
            total = len(iterable)
        except TypeError:  # no length (a generator, `None`, a data set of unknown size)
            pass
    return _Lines(iterable, total, desc, unit, stream, every)


class _Lines:
    """`progress` off a terminal: the part of tqdm's interface the zoo uses, as lines of text."""

    def __init__(self, iterable, total, desc, unit, stream, every):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.stream, self.every = stream, every
        self.n, self.closed = 0, False
        self.start = self.last = time.monotonic()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n=1):
        """Counts `n` more done; writes a line if `every` seconds passed since the last."""
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every and (self.total is None or self.n < self.total):  # else: the summary
            self.last = now
            done = self.n if self.total is None else f"{self.n}/{self.total}"
            self._write(f"{done} {self.unit}, {self._rate(now)} {self.unit}/s, {now - self.start:.0f} s")

    def close(self):
        """Writes the summary (once)."""
        if not self.closed:
            self.closed = True
            now = time.monotonic()
            self._write(f"{self.n} {self.unit} in {now - self.start:.1f} s ({self._rate(now)} {self.unit}/s)")

    def _rate(self, now):
        return f"{self.n / max(now - self.start, 1e-9):.3g}"

    def _write(self, line):
        print(f"{self.desc}: {line}", file=self.stream, flush=True)
