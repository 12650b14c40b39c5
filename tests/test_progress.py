"""`odezoo._progress.progress`: a tqdm bar on a terminal; lines and a summary anywhere else."""

import io
import re

from odezoo._progress import progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_it_writes_lines_and_a_summary():
    stream = io.StringIO()
    assert list(progress(range(5), desc="counting", unit="numbers", stream=stream)) == list(range(5))
    assert re.fullmatch(r"counting: 5 numbers in \d+\.\d s \([\d.e+]+ numbers/s\)\n", stream.getvalue())
    stream = io.StringIO()
    with progress(total=7, desc="translating", unit="sentences", stream=stream, every=0) as bar:
        bar.update(3)
        bar.update(4)
    first, summary = stream.getvalue().splitlines()  # at 7/7 the summary stands for the periodic line
    assert first.startswith("translating: 3/7 sentences, ") and first.split(", ")[1].endswith(" sentences/s")
    assert summary.startswith("translating: 7 sentences in ") and summary.endswith(" sentences/s)")


def test_periodic_lines_wait_for_their_interval():
    stream = io.StringIO()
    for _ in progress(range(100), desc="evaluating", unit="batches", stream=stream, every=3600):
        pass
    assert stream.getvalue().count("\n") == 1  # the summary only


def test_on_a_terminal_it_is_a_bar():
    stream = _Terminal()
    assert sum(progress(range(4), desc="counting", unit="numbers", stream=stream)) == 6
    assert "counting: 100%" in stream.getvalue() and "4/4" in stream.getvalue()
