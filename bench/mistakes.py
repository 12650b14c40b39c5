"""A trial of realistic user mistakes across the CLI and the Python API, each classified automatically.

    python bench/mistakes.py [--json OUT.json] [--only SUBSTRING ...] [--timeout 60]

Each case makes one mistake a new user could make (a wrong type, a value out of range, a wrong shape or
layout, a wrong file kind, a missing file, an existing output, a wrong preset or option, an empty input,
NaN, a huge value, ...). It runs in a fresh folder (the working directory of the case) holding the files
the case sets up (the user's files), with `odezoo` imported from wherever `PYTHONPATH` points, and its
outcome is sorted into one of:

- `clear`: one `OdezooError` (API) or a non-zero exit with a message and no traceback (CLI); or the run
  completed with a warning or note that odezoo wrote (a Python warning from odezoo's code, a log record
  of an `odezoo` logger, a stderr line starting `warning`/`note` or `odezoo ...: warning`), or for a
  case with a result check (`ok`), a correct result. Where the case names the `advice` the message must
  carry (a substring, case-insensitive), a message without it is `advice` instead of `clear`;
- `silent`: completed without an error or odezoo warning although the input was a mistake; a recipe
  case counts as completed once training begins with the mistaken setting (`keras.Model.fit`, the PDE
  recipe's `minimize`, DURR's training data), so no training runs in this trial;
- `traceback`: any other exception, or a traceback on the CLI's stderr;
- `lost`: a file the user had in the case's folder was changed or removed, or a file was written
  outside the case's folder (an escape);
- `hang`: no result within the case's time limit (`signal.alarm` in this process, or a subprocess
  killed at the limit) and nothing said on stderr meanwhile (a run that shows its progress, the time it
  will take or what it waits for is `clear`).

A refusal that left files in the case's folder (a run folder written before the settings were checked)
stays `clear`, with the files named in its outcome.

The CLI runs in this process (`odezoo.cli.main(argv)`, `SystemExit` caught), except where a process of
its own is the point (an environment variable read at start-up, a full stdout, a terminal as stdin).
Models load once and are shared by the API cases. `HF_HUB_OFFLINE=1` is set, so no case reaches the
network. The cases differ from the ones listed in issue 28 (those have tests of their own).
"""

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402

import odezoo  # noqa: E402
from odezoo.errors import OdezooError  # noqa: E402

LM = "lm_resnet20_fashion_mnist"
CNN = "small_cnn_natural_fashion_mnist"
MF = "mean_field_resnet8_fashion_mnist"
DURR = "durr_denoise_gray"
MT = "macaron_dictionary_de_en"
MLM = "macaron_bert_small_dictionary_en"
TAGS = "bert_small_dictionary_en_dictionary_tags"
HEAT = "pde_net2_heat"
BURGERS = "pde_net2_burgers2d"
KINDS = ("clear", "advice", "silent", "traceback", "lost", "hang")
# The advice of a misplaced or missing axis: the message says which axis, or names the dimensions.
AXES = ("axis", "axes", "dimension", "1-d", "2-d", "3-d", "4-d", "5-d")


# ----------------------------------------------------------------------------- the table's machinery


@dataclass
class Case:
    id: str
    what: str  # the mistake, in a user's words
    run: object  # `Cli`, `Proc`, or a function of the `Context`
    advice: str | tuple | None = None  # a substring the message must hold (case-insensitive; a tuple: one of)
    files: dict = field(default_factory=dict)  # the user's files: name -> bytes | str | callable(path) | None
    timeout: int | None = None
    ok: object = None  # for a mistake odezoo may also handle by doing the right thing: a check of the result


@dataclass
class Outcome:
    rc: int | None = None  # exit status of a CLI run
    stdout: str = ""
    stderr: str = ""
    value: object = None
    error: BaseException | None = None
    trace: str = ""
    timed_out: bool = False
    warned: list = field(default_factory=list)  # what odezoo warned or noted
    seconds: float = 0.0


@dataclass
class Cli:
    """`odezoo ARGV` in this process."""

    argv: tuple
    stdin: str | None = None


@dataclass
class Proc:
    """`odezoo ARGV` in a process of its own: `env` added to this one's; `stdout` a file to write to."""

    argv: tuple
    env: dict = field(default_factory=dict)
    stdout: str | None = None
    terminal: bool = False  # standard input is a terminal nobody types into


def cli(*argv, stdin=None):
    return Cli(tuple(argv), stdin)


class _Timeout(BaseException):
    pass


class _TrainingStarted(BaseException):
    """Raised where a recipe begins to train: the settings were accepted."""


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        if record.name.startswith("odezoo"):
            self.records.append(record.getMessage())


PACKAGE = Path(odezoo.__file__).resolve().parent


class Context:
    """What API cases share: the case's folder and the models, loaded once."""

    def __init__(self):
        self.dir = Path.cwd()
        self._models = {}

    def model(self, name):
        if name not in self._models:
            self._models[name] = odezoo.load(name)
        return self._models[name]

    def fresh(self, name, **overrides):
        return odezoo.load(name, **overrides)

    def images(self, count=8):
        """Bundled Fashion-MNIST test images, float32 in [0, 1], and their labels."""
        from odezoo.data.images import SAMPLE_FILE

        with np.load(SAMPLE_FILE) as f:
            return f["images"][:count].astype("float32") / 255.0, f["labels"][:count].astype("int64")

    def noisy(self, size=48, count=1, channels=1):
        rng = np.random.default_rng(0)
        clean = np.clip(_smooth(rng, size, size, channels), 0, 1)
        return np.clip(clean[None].repeat(count, 0) + rng.normal(0, 0.1, (count, size, size, channels)), 0, 1)

    def field(self, model, batch=1):
        """A smooth periodic field `(batch, grid, grid, channels)` for a PDE model."""
        grid, channels = model.grid, len(model.channels)
        x = np.arange(grid) * 2 * np.pi / grid
        base = np.sin(x)[None, :] + np.cos(x)[:, None]
        return np.repeat(base[None, :, :, None], channels, -1).repeat(batch, 0).astype("float64")


def _smooth(rng, height, width, channels):
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = 0.5 + 0.25 * np.sin(6 * x + rng.uniform(0, 3)) * np.cos(4 * y)
    return np.repeat(image[..., None], channels, -1)


def png(height=64, width=64, channels=1, seed=0, mode=None):
    """A writer of an image file (format from the file's suffix) for `Case.files`."""

    def write(path):
        from PIL import Image

        pixels = (_smooth(np.random.default_rng(seed), height, width, channels) * 255).astype("uint8")
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        image = image.convert(mode) if mode else image
        image.save(path)

    return write


def preset_copy(name, damage=None):
    """A writer of a copy of the bundled preset folder `name`, then `damage(folder)` applied."""

    def write(path):
        from odezoo.presets import bundled_folder

        shutil.copytree(bundled_folder(name), path)
        if damage:
            damage(Path(path))

    return write


def _setup(folder, files):
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif callable(content):
            content(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _snapshot(folder):
    """sha256 of every file under `folder`, by relative name."""
    result = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            result[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


_HOOK = {"active": False}


def _install_training_hook():
    """Makes a recipe stop where it would begin to train (`_TrainingStarted`) while `_HOOK` is active."""
    import keras

    fit = keras.Model.fit

    def hooked_fit(self, *args, **kwargs):
        if _HOOK["active"]:
            raise _TrainingStarted("keras fit")
        return fit(self, *args, **kwargs)

    keras.Model.fit = hooked_fit
    import odezoo.recipes  # noqa: F401  (imports every recipe module)

    def stopper(original, what):
        def hooked(*args, **kwargs):
            if _HOOK["active"]:
                raise _TrainingStarted(what)
            return original(*args, **kwargs)

        return hooked

    for name, module in list(sys.modules.items()):
        if not name.startswith("odezoo.recipes"):
            continue
        for attribute, what in (("minimize", "PDE stages"), ("_training_images", "DURR training data")):
            if callable(getattr(module, attribute, None)):
                setattr(module, attribute, stopper(getattr(module, attribute), what))


def _odezoo_warning(w):
    return Path(w.filename).resolve().is_relative_to(PACKAGE)


def _note_lines(text):
    lines = [line.strip() for line in text.splitlines()]
    return [
        line
        for line in lines
        if line.lower().startswith(("warning", "note"))
        or (line.startswith("odezoo") and ": warning" in line.lower())
    ]


def _capture():
    """A text stream like a redirected stdout (with a `buffer`), held in memory."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)


def _text(stream):
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8", "replace")


def _alarm(*_):
    raise _Timeout()


def run_in_process(case, ctx, timeout):
    out, err = _capture(), _capture()
    outcome = Outcome()
    handler = _Warnings()
    logging.getLogger().addHandler(handler)
    previous = signal.signal(signal.SIGALRM, _alarm)
    stdin = sys.stdin
    start = time.perf_counter()
    _HOOK["active"] = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                signal.alarm(timeout)
                try:
                    if isinstance(case.run, Cli):
                        from odezoo.cli import main

                        if case.run.stdin is not None:
                            sys.stdin = io.StringIO(case.run.stdin)
                        outcome.rc = main(list(case.run.argv))
                    else:
                        outcome.value = case.run(ctx)
                except SystemExit as error:
                    outcome.rc = error.code if isinstance(error.code, int) else 1
                    if not isinstance(error.code, int) and error.code is not None:
                        print(error.code, file=sys.stderr)
                except _Timeout:
                    outcome.timed_out = True
                except _TrainingStarted:
                    outcome.value = "training began"
                    if isinstance(case.run, Cli):
                        outcome.rc = 0
                except BaseException as error:  # noqa: BLE001  (every failure is classified)
                    outcome.error, outcome.trace = error, traceback.format_exc()
                finally:
                    signal.alarm(0)
        outcome.warned = [str(w.message) for w in caught if _odezoo_warning(w)] + handler.records
    finally:
        _HOOK["active"] = False
        sys.stdin = stdin
        signal.signal(signal.SIGALRM, previous)
        logging.getLogger().removeHandler(handler)
        _release_runs()
    outcome.seconds = time.perf_counter() - start
    outcome.stdout, outcome.stderr = _text(out), _text(err)
    outcome.warned += _note_lines(outcome.stderr)
    return outcome


def _release_runs():
    """Lets go of the run locks a stopped recipe holds in this process."""
    common = sys.modules.get("odezoo.recipes._common")
    for workdir in list(getattr(common, "_LOCKS", {})):
        common.release(workdir)


def run_process(case, timeout):
    proc = case.run
    env = {**os.environ, **proc.env}
    command = [sys.executable, "-m", "odezoo.cli", *proc.argv]
    outcome = Outcome()
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stdout = stack.enter_context(open(proc.stdout, "w")) if proc.stdout else subprocess.PIPE
        stdin = subprocess.DEVNULL
        if proc.terminal:
            import pty

            leader, follower = pty.openpty()
            stack.callback(os.close, leader)
            stdin = stack.enter_context(os.fdopen(follower, "rb"))
        child = subprocess.Popen(
            command,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = child.communicate(timeout=timeout)
            outcome.rc, outcome.stdout, outcome.stderr = child.returncode, out or "", err or ""
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            _, err = child.communicate()  # what it printed before the limit (a prompt, progress) counts
            outcome.stderr = err or ""
            outcome.timed_out = True
    outcome.seconds = time.perf_counter() - start
    outcome.warned = _note_lines(outcome.stderr)
    return outcome


def _message(outcome):
    """The error message of a failed run."""
    if outcome.error is not None:
        return str(outcome.error)
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [f"exit status {outcome.rc}"])[-1]


def _native_noise(line):
    """A line TensorFlow's C++ start-up prints whatever the command does."""
    return line.startswith(
        ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable the following")
    )


def _shown(value):
    text = repr(value) if not isinstance(value, str) else value
    return " ".join(text.split())[:100]


def _advised(case, text):
    """Whether `text` holds the case's `advice` (one of them, for a tuple), if it names any."""
    wanted = (case.advice,) if isinstance(case.advice, str) else case.advice or ()
    return not wanted or any(part.lower() in text.lower() for part in wanted)


def _wanted(case):
    return repr(case.advice) if isinstance(case.advice, str) else " / ".join(map(repr, case.advice))


def classify(case, outcome, lost):
    """`(kind, one-line outcome)`."""
    if lost:
        return "lost", lost
    if outcome.timed_out:
        said = [line for line in outcome.stderr.splitlines() if line.strip() and not _native_noise(line)]
        if said:  # it says what it is doing (progress, the time it takes, what it waits for)
            return "clear", f"still running after {outcome.seconds:.0f} s, said: " + _shown(said[-1])
        return "hang", f"no result after {outcome.seconds:.0f} s"
    error = outcome.error
    failed = error is not None or (outcome.rc not in (None, 0))
    if error is not None and not isinstance(error, OdezooError):
        where = outcome.trace.strip().splitlines()
        place = next((line.strip() for line in reversed(where) if line.strip().startswith("File")), "")
        return "traceback", f"{type(error).__name__}: {_shown(str(error))} [{place[:90]}]"
    if failed and "Traceback (most recent call last)" in outcome.stderr:
        last = [line for line in outcome.stderr.splitlines() if line.strip()][-1]
        return "traceback", f"exit {outcome.rc}: {_shown(last)}"
    if failed:
        message = _message(outcome)
        if not _advised(case, message):
            return "advice", f"lacks {_wanted(case)}: {_shown(message)}"
        return "clear", _shown(message)
    if outcome.warned:
        text = " | ".join(outcome.warned)
        if not _advised(case, text):
            return "advice", f"warned without {_wanted(case)}: {_shown(text)}"
        return "clear", "warned: " + _shown(text)
    if case.ok is not None:
        try:
            right = bool(case.ok(outcome.value))
        except Exception:  # noqa: BLE001  (a result the check cannot read is not right)
            right = False
        if right:
            return "clear", "handled: " + _shown(outcome.stdout if outcome.value is None else outcome.value)
    shown = outcome.value if outcome.value is not None else outcome.stdout or f"exit {outcome.rc}"
    return "silent", "completed: " + _shown(shown)


def run_case(case, ctx, root, default_timeout, index):
    folder = root / f"case{index:03d}"  # not the id: messages echo paths, and `advice` is matched in them
    folder.mkdir(parents=True)
    _setup(folder, case.files)
    before, around = _snapshot(folder), set(os.listdir(root))
    timeout = case.timeout or default_timeout
    cwd = os.getcwd()
    os.chdir(folder)
    ctx.dir = folder
    try:
        if isinstance(case.run, Proc):
            outcome = run_process(case, timeout)
        else:
            outcome = run_in_process(case, ctx, timeout)
        after = _snapshot(folder)
        escaped = sorted(set(os.listdir(root)) - around)
        lost = ""
        if changed := [name for name, digest in before.items() if after.get(name) != digest]:
            lost = "changed or removed the user's " + ", ".join(changed[:3])
        if escaped:
            lost = (
                (lost + "; " if lost else "") + "wrote outside the case's folder: " + ", ".join(escaped[:3])
            )
        kind, text = classify(case, outcome, lost)  # in the folder: `ok` reads the files written
        left = sorted(set(after) - set(before))
        refused = outcome.error is not None or outcome.rc not in (None, 0)
        if refused and kind in ("clear", "advice") and left:  # a refusal that wrote files first
            text += f" [left behind: {', '.join(left[:3])}{', ...' if len(left) > 3 else ''}]"
    finally:
        os.chdir(cwd)
    return {
        "id": case.id,
        "what": case.what,
        "kind": kind,
        "outcome": text,
        "seconds": round(outcome.seconds, 1),
    }


# ----------------------------------------------------------------------------- the cases

CASES = []


def case(id, what, run, **kwargs):
    CASES.append(Case(id, what, run, **kwargs))


def train(recipe, *sets, workdir="run", extra=()):
    """`odezoo train RECIPE --workdir run --set ...`."""
    argv = ["train", recipe, "--workdir", workdir, *extra]
    for item in sets:
        argv += ["--set", item]
    return Cli(tuple(argv))


TEXT_FILE = "Dear diary,\nthis is mine.\n"
SHOE = {"shoe.png": png(28, 28)}

# --- the CLI: commands, presets, names
case("cli-no-command", "runs `odezoo` alone", cli())
case("cli-command-typo", "types `odezoo evaluate` for `eval`", cli("evaluate", LM))
case("list-no-match", "lists a pattern no preset matches", cli("list", "resnet50*"))
case("info-preset-typo", "misspells a preset", cli("info", "lm_resnet20_fashion_mnst"), advice=LM)
case("info-preset-uppercase", "writes the preset in capitals", cli("info", LM.upper()), advice=LM)
case("info-preset-blank", "gives a blank preset name", cli("info", "   "))
case("info-missing-folder", "names a local folder that does not exist", cli("info", "./my_model"))
case("info-empty-folder", "names an empty folder", cli("info", "empty"), files={"empty": None})
case(
    "info-folder-of-notes",
    "names a folder of their own notes as a preset",
    cli("info", "./notes"),
    files={"notes/todo.txt": TEXT_FILE},
)
case(
    "info-weights-file",
    "names the weights file instead of its folder",
    cli("info", "mine/model.weights.h5"),
    files={"mine": preset_copy(LM)},
    advice="folder",
)
case("info-hf-extra-part", "writes an hf:// address with three parts", cli("info", "hf://odezoo/lm/extra"))
case("info-hf-spaces", "writes an hf:// address with a space", cli("info", "hf://odezoo/lm resnet"))

# --- predict: image classification
case("predict-topk-zero", "asks for the top 0 classes", cli("predict", LM, "--top-k", "0"))
case("predict-topk-over", "asks for the top 25 of 10 classes", cli("predict", LM, "--top-k", "25"))
case("predict-topk-word", "writes --top-k three", cli("predict", LM, "--top-k", "three"))
case("predict-sample-zero", "asks for 0 sample images", cli("predict", LM, "--sample", "0"))
case("predict-sample-over", "asks for 5000 sample images", cli("predict", LM, "--sample", "5000"))
case(
    "predict-sample-and-file",
    "gives --sample and a file",
    cli("predict", LM, "shoe.png", "--sample", "3"),
    files=SHOE,
)
case("predict-missing-file", "names an image that does not exist", cli("predict", LM, "boot.png"))
case(
    "predict-not-an-image",
    "gives a text file named .png",
    cli("predict", LM, "shoe.png"),
    files={"shoe.png": TEXT_FILE},
)
case(
    "predict-empty-file", "gives an empty .png file", cli("predict", LM, "shoe.png"), files={"shoe.png": b""}
)
case(
    "predict-pdf",
    "gives a PDF scan",
    cli("predict", LM, "scan.pdf"),
    files={"scan.pdf": b"%PDF-1.4\n%\xe2\xe3\n"},
)
case("predict-empty-folder", "gives an empty folder", cli("predict", LM, "photos"), files={"photos": None})
case(
    "predict-folder-without-images",
    "gives a folder of documents",
    cli("predict", LM, "docs"),
    files={"docs/a.txt": TEXT_FILE},
)
case(
    "predict-text-to-classifier", "gives a sentence to an image classifier", cli("predict", LM, "a red dress")
)
case(
    "predict-truncated-png",
    "gives a PNG cut short by a failed copy",
    cli("predict", LM, "cut.png"),
    files={
        "full.png": png(64, 64),
        "cut.png": lambda p: p.write_bytes((p.parent / "full.png").read_bytes()[:60]),
    },
)
case(
    "predict-beam-on-classifier",
    "passes a translation option to a classifier",
    cli("predict", LM, "--beam", "3"),
)
case("predict-out-on-classifier", "passes --out to a classifier", cli("predict", LM, "--out", "results"))
case("predict-overwrite-alone", "passes --overwrite without --output", cli("predict", LM, "--overwrite"))
case(
    "predict-output-exists",
    "writes --output over their own file",
    cli("predict", LM, "--output", "result.json"),
    files={"result.json": '{"mine": 1}\n'},
)
case(
    "predict-output-folder",
    "gives a folder as --output",
    cli("predict", LM, "--output", "out"),
    files={"out": None},
)
case(
    "predict-output-under-file",
    "gives --output inside a file",
    cli("predict", LM, "--output", "notes.txt/result.json"),
    files={"notes.txt": TEXT_FILE},
)
case("predict-input-missing", "names a missing --input file", cli("predict", MT, "--input", "sentences.txt"))
case(
    "predict-input-utf16",
    "gives a UTF-16 --input file",
    cli("predict", MT, "--input", "s.txt"),
    files={"s.txt": "Hallo Welt\n".encode("utf-16")},
)
case(
    "predict-input-empty",
    "gives an empty --input file",
    cli("predict", MT, "--input", "s.txt"),
    files={"s.txt": ""},
)
case(
    "predict-input-stdin-empty", "pipes nothing into --input -", cli("predict", MT, "--input", "-", stdin="")
)
case(
    "predict-input-folder",
    "gives a folder as --input",
    cli("predict", MT, "--input", "texts"),
    files={"texts": None},
)
case(
    "predict-input-list-missing-image",
    "lists a missing image in an --input file",
    cli("predict", LM, "--input", "list.txt"),
    files={"shoe.png": png(28, 28), "list.txt": "shoe.png\nboot.png\n"},
)

# --- predict: image restoration
case("restore-no-input", "runs the restorer without images", cli("predict", DURR))
case(
    "restore-tiny-image",
    "restores an 8x8 icon",
    cli("predict", DURR, "icon.png"),
    files={"icon.png": png(8, 8)},
)
case(
    "restore-steps-negative",
    "passes --steps -2",
    cli("predict", DURR, "a.png", "--steps", "-2"),
    files={"a.png": png()},
)
case(
    "restore-steps-and-max",
    "passes --steps and --max-steps",
    cli("predict", DURR, "a.png", "--steps", "3", "--max-steps", "5"),
    files={"a.png": png()},
)
case(
    "restore-steps-beyond-training",
    "fixes 400 steps on a model that takes at most 12",
    cli("predict", DURR, "a.png", "--steps", "400"),
    files={"a.png": png(32, 32)},
    timeout=120,
)
case(
    "restore-out-existing-file",
    "gives their notes file as --out",
    cli("predict", DURR, "a.png", "--out", "notes.txt"),
    files={"a.png": png(), "notes.txt": TEXT_FILE},
)
case(
    "restore-out-png-two-images",
    "gives one --out RESULT.PNG for two images",
    cli("predict", DURR, "a.png", "b.png", "--out", "RESULT.PNG"),
    files={"a.png": png(), "b.png": png(seed=1)},
)
case(
    "restore-same-stem",
    "restores a.png and a.jpg of one folder",
    cli("predict", DURR, "photos"),
    files={"photos/a.png": png(), "photos/a.jpg": png(seed=1)},
    ok=lambda _: len(list(Path("restored").glob("*"))) == 2,
)
case(
    "restore-out-here",
    "restores into the folder of the inputs",
    cli("predict", DURR, "a.png", "--out", "."),
    files={"a.png": png()},
)
case(
    "restore-topk",
    "passes --top-k to the restorer",
    cli("predict", DURR, "a.png", "--top-k", "3"),
    files={"a.png": png()},
)
case("restore-sample", "passes --sample to the restorer", cli("predict", DURR, "--sample", "2"))
case("restore-text", "gives the restorer a sentence", cli("predict", DURR, "hello world"))

# --- predict: text
case("translate-no-input", "runs the translator without sentences", cli("predict", MT))
case("translate-beam-zero", "passes --beam 0", cli("predict", MT, "Hallo", "--beam", "0"))
case("translate-beam-huge", "passes --beam 100000", cli("predict", MT, "Hallo", "--beam", "100000"))
case("translate-lenpen-nan", "passes --lenpen nan", cli("predict", MT, "Hallo", "--lenpen", "nan"))
case("translate-blank", "translates a blank line", cli("predict", MT, "   "))
case(
    "translate-long",
    "translates a 1100-word text as one sentence",
    cli("predict", MT, " ".join(["Haus"] * 1100)),
)
case("translate-topk", "passes --top-k to the translator", cli("predict", MT, "Hallo", "--top-k", "2"))
case(
    "translate-file-as-text",
    "gives the file of sentences as an argument (forgot --input)",
    cli("predict", MT, "saetze.txt"),
    files={"saetze.txt": "Hallo\nGuten Morgen\n"},
)
case(
    "fillmask-no-mask",
    "gives a text without <mask>",
    cli("predict", MLM, "the doctor was here"),
    advice="<mask>",
)
case(
    "fillmask-bert-mask", "writes BERT's [MASK]", cli("predict", MLM, "the [MASK] was here"), advice="<mask>"
)
case("fillmask-topk-zero", "passes --top-k 0", cli("predict", MLM, "the <mask> was here", "--top-k", "0"))
case(
    "fillmask-topk-huge",
    "passes --top-k 100000",
    cli("predict", MLM, "the <mask> was here", "--top-k", "100000"),
)
case(
    "fillmask-beam", "passes --beam to a masked LM", cli("predict", MLM, "the <mask> was here", "--beam", "2")
)
case("fillmask-too-many", "gives a text of 80 masks", cli("predict", MLM, " ".join(["<mask>"] * 80)))
case("classify-topk", "passes --top-k to the tagger", cli("predict", TAGS, "a word", "--top-k", "2"))
case("classify-no-input", "runs the tagger without text", cli("predict", TAGS))
case("pde-predict", "runs predict on a PDE preset with a file", cli("predict", HEAT, "u0.npy"))

# --- eval
QUICK = ("--split", "sample", "--limit", "16")
case(
    "eval-dataset-cifar",
    "evaluates a Fashion-MNIST model on CIFAR-10",
    cli("eval", LM, "--dataset", "cifar10"),
)
case("eval-dataset-unknown", "names the data set mnist", cli("eval", LM, "--dataset", "mnist"))
case("eval-split-unknown", "asks for a validation split", cli("eval", LM, "--split", "validation"))
case("eval-split-capital", "writes the split as Test", cli("eval", LM, "--split", "Test", "--limit", "16"))
case("eval-limit-negative", "passes --limit -1", cli("eval", LM, "--limit", "-1"))
case("eval-batch-zero", "passes --batch-size 0", cli("eval", LM, "--batch-size", "0"))
case("eval-eps-without-attack", "passes --eps without --attack", cli("eval", LM, "--eps", "0.1", *QUICK))
case(
    "eval-eps-255",
    "gives the attack radius on the 0..255 scale",
    cli("eval", LM, "--attack", "pgd", "--eps", "8", *QUICK),
    advice="255",
)
case(
    "eval-step-over-eps",
    "gives an attack step larger than the radius",
    cli("eval", LM, "--attack", "pgd", "--eps", "0.05", "--step", "0.1", *QUICK),
)
case(
    "eval-steps-zero",
    "passes --steps 0 with --attack",
    cli("eval", LM, "--attack", "pgd", "--steps", "0", *QUICK),
)
case(
    "eval-eps-negative",
    "passes a negative radius",
    cli("eval", LM, "--attack", "pgd", "--eps", "-0.1", *QUICK),
)
case("eval-attack-fgsm", "asks for an FGSM attack", cli("eval", LM, "--attack", "fgsm"))
case("eval-sigma-classifier", "passes --sigma to a classifier", cli("eval", LM, "--sigma", "25"))
case(
    "eval-trajectories-classifier",
    "passes --trajectories to a classifier",
    cli("eval", LM, "--trajectories", "5"),
)
case(
    "eval-limit-huge",
    "passes a limit with too many digits",
    cli("eval", LM, "--split", "sample", "--limit", "9" * 20),
)
case("eval-steps-float", "passes --steps 2.5", cli("eval", LM, "--attack", "pgd", "--steps", "2.5"))
case("eval-durr-quality-zero", "passes --quality 0", cli("eval", DURR, "--quality", "0"))
case("eval-durr-quality-over", "passes --quality 150", cli("eval", DURR, "--quality", "150"))
case("eval-durr-both", "passes --sigma and --quality", cli("eval", DURR, "--sigma", "25", "--quality", "30"))
case(
    "eval-durr-sigma-nan",
    "passes --sigma nan",
    cli("eval", DURR, "--sigma", "nan", "--dataset", "fashion_mnist", "--split", "sample", "--limit", "2"),
)
case(
    "eval-durr-sigma-inf",
    "passes --sigma inf",
    cli("eval", DURR, "--sigma", "inf", "--dataset", "fashion_mnist", "--split", "sample", "--limit", "2"),
    advice="sigma",
)
case("eval-durr-split", "asks the restorer for a val split", cli("eval", DURR, "--split", "val"))
case("eval-durr-attack", "passes --attack pgd to the restorer", cli("eval", DURR, "--attack", "pgd"))
case("eval-durr-steps-negative", "passes --steps -1 to the restorer", cli("eval", DURR, "--steps", "-1"))
case("eval-pde-no-trajectories", "passes --trajectories 0", cli("eval", HEAT, "--trajectories", "0"))
case("eval-pde-seed-negative", "passes --seed -3", cli("eval", HEAT, "--seed", "-3"))
case("eval-pde-dataset", "passes --dataset to a PDE model", cli("eval", HEAT, "--dataset", "heat"))
case("eval-pde-limit", "passes --limit to a PDE model", cli("eval", HEAT, "--limit", "5"))
case(
    "eval-mt-iwslt-no-data",
    "evaluates on IWSLT14 without its folder",
    cli("eval", MT, "--dataset", "iwslt14"),
)
case("eval-mt-split", "asks the translator for a dev split", cli("eval", MT, "--split", "dev"))
case("eval-mt-dataset-unknown", "names the data set europarl", cli("eval", MT, "--dataset", "europarl"))
case("eval-mt-beam-zero", "passes --beam 0 to eval", cli("eval", MT, "--beam", "0", "--limit", "2"))
case(
    "eval-mt-data-dir-missing",
    "points --data-dir at a dictionary file that does not exist",
    cli("eval", MT, "--data-dir", "de-en.txt", "--limit", "2"),
)
case("eval-mlm-glue", "evaluates the masked LM on glue/cola", cli("eval", MLM, "--dataset", "glue/cola"))
case(
    "eval-tags-dataset-typo",
    "names the tagger's data set dictionary_tag",
    cli("eval", TAGS, "--dataset", "dictionary_tag"),
)

# --- export, manifest, push, convert
case("export-no-format", "exports without --format", cli("export", LM))
case("export-format-case", "writes --format SavedModel", cli("export", LM, "--format", "SavedModel"))
case(
    "export-quantize-saved-model",
    "asks for a quantised SavedModel",
    cli("export", LM, "--format", "saved_model", "--quantize", "dynamic"),
    timeout=240,
)
case(
    "export-output-dir-file",
    "gives a file as --output-dir",
    cli("export", LM, "--format", "saved_model", "--output-dir", "export"),
    files={"export": TEXT_FILE},
)
case(
    "export-pde-int8",
    "asks for an int8 PDE export",
    cli("export", HEAT, "--format", "tflite", "--quantize", "int8"),
)
case(
    "export-unknown-preset",
    "exports a preset that does not exist",
    cli("export", "lm_resnet32", "--format", "onnx"),
)
case(
    "export-over-user-files",
    "exports where they keep notes beside an earlier export",
    cli("export", LM, "--format", "saved_model"),
    files={f"export/{LM}/saved_model/NOTES.md": "my deployment notes\n"},
    timeout=240,
    ok=lambda _: Path(f"export/{LM}/saved_model/NOTES.md").is_file(),  # kept: the export is right
)
case(
    "export-folder-is-file",
    "exports where a file of theirs has the export folder's name",
    cli("export", LM, "--format", "saved_model"),
    files={f"export/{LM}/saved_model": "my deployment notes\n"},
    timeout=240,
)
case(
    "export-manifest-damaged",
    "exports beside a MANIFEST.json they edited into invalid JSON",
    cli("export", LM, "--format", "saved_model"),
    files={"export/MANIFEST.json": "{ my edits"},
)
case("manifest-unknown", "asks the manifest for a preset that does not exist", cli("manifest", "lm_resnet32"))
case("push-repo-with-space", "pushes to a repository id with a space", cli("push", LM, "my model"))
case("push-empty-folder", "pushes an empty folder", cli("push", "mine", "me/mine"), files={"mine": None})
case(
    "convert-missing-checkpoint",
    "converts a checkpoint that is not there",
    cli("convert", "fairseq", "checkpoint_best.pt", "--dict", "dict.txt", "--out", "preset"),
)
case(
    "convert-not-a-checkpoint",
    "converts a text file named .pt",
    cli("convert", "fairseq", "checkpoint_best.pt", "--dict", "dict.txt", "--out", "preset"),
    files={"checkpoint_best.pt": TEXT_FILE, "dict.txt": "hallo 5\n"},
)

# --- the family commands
case("simulate-n-zero", "simulates 0 trajectories", cli("simulate", "heat", "--n", "0", "--out", "sim"))
case(
    "simulate-steps-negative", "simulates -1 steps", cli("simulate", "heat", "--steps", "-1", "--out", "sim")
)
case("simulate-unknown", "simulates navier_stokes", cli("simulate", "navier_stokes", "--out", "sim"))
case(
    "simulate-capital",
    "writes the equation as Heat",
    cli("simulate", "Heat", "--n", "1", "--steps", "1", "--out", "sim"),
)
case(
    "simulate-noise-negative",
    "passes --noise -0.1",
    cli("simulate", "heat", "--noise", "-0.1", "--out", "sim"),
)
case("simulate-noise-nan", "passes --noise nan", cli("simulate", "heat", "--noise", "nan", "--out", "sim"))
case("simulate-seed-negative", "passes --seed -1", cli("simulate", "heat", "--seed", "-1", "--out", "sim"))
case(
    "simulate-out-file",
    "gives a file as --out",
    cli("simulate", "heat", "--n", "1", "--steps", "1", "--out", "notes.txt"),
    files={"notes.txt": TEXT_FILE},
)
case(
    "simulate-n-huge",
    "asks for 10^8 trajectories (extra zeros)",
    cli("simulate", "heat", "--n", "100000000", "--steps", "1", "--out", "sim"),
)
case(
    "simulate-over-other-npz",
    "simulates into a folder holding their own heat_seed0.npz",
    cli("simulate", "heat", "--n", "1", "--steps", "1", "--out", "data"),
    files={"data/heat_seed0.npz": lambda p: np.savez(p, x=np.arange(3))},
)
case("simulate-no-out", "simulates without --out", cli("simulate", "heat"))
case("orders-wrong-preset", "runs block-orders on an LM-ResNet", cli("block-orders", LM))
case("orders-zero", "runs block-orders with --orders 0", cli("block-orders", MF, "--orders", "0"))
case("orders-limit-negative", "runs block-orders with --limit -1", cli("block-orders", MF, "--limit", "-1"))
case(
    "orders-dataset-unknown",
    "runs block-orders on mnist",
    cli("block-orders", MF, "--dataset", "mnist", "--limit", "5"),
)
case(
    "continuum-out-file",
    "gives a file as continuum-limit's --out",
    cli("continuum-limit", "--out", "results"),
    files={"results": TEXT_FILE},
)

# --- train: settings (a run stops where it would begin to train)
TINY = ("epochs=1", "limit=256")
case("train-unknown-recipe", "trains lm_resnet20 (not a recipe name)", train("lm_resnet20"), advice=LM)
case("train-no-workdir", "trains without --workdir", cli("train", LM))
case("train-set-no-value", "writes --set epochs", train(LM, "epochs"))
case("train-set-space", "writes --set epochs 2", cli("train", LM, "--workdir", "run", "--set", "epochs", "2"))
case("train-set-unknown", "writes lr= for learning_rate=", train(LM, "lr=0.1"), advice="learning_rate")
case("train-epochs-word", "writes epochs=two", train(LM, "epochs=two"))
case("train-epochs-zero", "sets epochs=0", train(LM, "epochs=0"))
case("train-epochs-fraction", "sets epochs=2.5", train(LM, "epochs=2.5"))
case("train-epochs-scientific", "sets epochs=1e3", train(LM, "epochs=1e3"))
case("train-batch-zero", "sets batch_size=0", train(LM, "batch_size=0"))
case("train-lr-negative", "sets learning_rate=-0.1", train(LM, "learning_rate=-0.1"))
case("train-lr-nan", "sets learning_rate=nan", train(LM, "learning_rate=nan"))
case("train-bool-yes", "sets nesterov=yes", train(LM, "nesterov=yes"))
case("train-scheme-unknown", "sets scheme=rk4", train(LM, "scheme=rk4"))
case("train-depth-layout", "sets depth=21 (not 6n+2)", train(LM, "depth=21", *TINY))
case("train-width-zero", "sets width=0", train(LM, "width=0"))
case("train-weight-decay-negative", "sets weight_decay=-1e-4", train(LM, "weight_decay=-1e-4"))
case("train-block-type", "sets block_type=wide", train(LM, "block_type=wide"))
case("train-lr-schedule", "sets lr_schedule=linear", train(LM, "lr_schedule=linear"))
case("train-dataset-unknown", "sets dataset=mnist", train(LM, "dataset=mnist"))
case("train-strategy-unknown", "sets strategy=gpu", train(LM, "strategy=gpu"))
case("train-dtype-float16", "sets dtype=float16", train(LM, "dtype=float16"))
case("train-limit-negative", "sets limit=-1", train(LM, "limit=-1"))
case("train-preset-escape", "names the preset ../../stolen", train(LM, "preset=../../stolen", *TINY))
case("train-preset-slash", "names the preset with a slash", train(LM, "preset=models/mine", *TINY))
case("train-preset-blank", "names the preset ' '", train(LM, "preset= ", *TINY))
case("train-preset-parent", "names the preset ..", train(LM, "preset=..", *TINY))
case("train-yopo-mixed16", "trains YOPO in mixed_float16", train(CNN, "dtype=mixed_float16"))
case("train-method-unknown", "sets method=madry", train(CNN, "method=madry"))
case("train-eps-zero", "sets eps=0", train(CNN, "eps=0"))
case("train-step-over-eps", "sets step=0.5 (eps 0.1)", train(CNN, "step=0.5"))
case(
    "train-rule-natural",
    "sets first_layer_rule=official on a natural run",
    train(CNN, "first_layer_rule=official"),
)
case("train-milestones-text", "sets milestones=a,b", train(CNN, "milestones=a,b"))
case(
    "train-milestones-beyond",
    "sets milestones=30 on a 14-epoch run",
    train(CNN, "milestones=30", "limit=256"),
)
case(
    "train-warmup-beyond",
    "sets warmup_epochs=20 on a 14-epoch run",
    train(CNN, "warmup_epochs=20", "limit=256"),
)
case("train-clipnorm-negative", "sets clipnorm=-1", train(CNN, "clipnorm=-1"))
case("train-beta-negative", "sets beta=-1", train(CNN, "beta=-1"))
case("train-mf-scaling", "sets scaling=xavier", train(MF, "scaling=xavier"))
case("train-mf-variant", "sets variant=mlp", train(MF, "variant=mlp"))
case("train-mf-orders", "sets orders=-1", train(MF, "orders=-1"))
case("train-mf-blocks", "sets num_blocks=0", train(MF, "num_blocks=0"))
case("train-durr-levels", "sets level_low above level_high", train(DURR, "level_low=60", "level_high=20"))
case("train-durr-channels", "sets channels=2", train(DURR, "channels=2"))
case("train-durr-degradation", "sets degradation=blur", train(DURR, "degradation=blur"))
case("train-durr-eval-levels", "writes eval_levels=25;50", train(DURR, "eval_levels=25;50"))
case("train-durr-step-table", "writes step_table=15-3", train(DURR, "step_table=15-3"))
case("train-durr-gamma", "sets gamma=1.5", train(DURR, "gamma=1.5"))
case(
    "train-durr-levels-unit-scale",
    "gives the noise levels on the 0..1 scale",
    train(DURR, "level_low=0.05", "level_high=0.2", "eval_levels=0.1", "step_table=", "limit=2"),
)
case("train-pde-equation", "sets equation=wave", train(HEAT, "equation=wave"))
case("train-pde-blocks", "writes blocks=1;2", train(HEAT, "blocks=1;2"))
case("train-pde-optimizer", "sets optimizer=sgd", train(HEAT, "optimizer=sgd"))
case("train-pde-kernel", "sets kernel_size=6", train(HEAT, "kernel_size=6", "blocks=0", "maxiter=1"))
case("train-pde-constraint", "sets constraint=none", train(HEAT, "constraint=none", "blocks=0", "maxiter=1"))
case("train-pde-eval-times", "writes eval_times=1;2", train(HEAT, "eval_times=1;2", "blocks=0", "maxiter=1"))
case("train-mt-direction", "sets direction=en-fr", train(MT, "direction=en-fr"))
case("train-mt-heads", "sets num_heads=3 for hidden_dim=128", train(MT, "num_heads=3"))
case("train-mt-bpe-zero", "sets bpe_merges=0", train(MT, "bpe_merges=0"))
case("train-mt-dataset", "sets dataset=wmt", train(MT, "dataset=wmt"))
case("train-mt-lenpen-nan", "sets lenpen=nan", train(MT, "lenpen=nan"))
case(
    "train-mt-attention-dropout",
    "sets attention_dropout=-0.1",
    train(MT, "attention_dropout=-0.1", "limit=200", "epochs=1"),
    timeout=120,
)
case("train-mlm-mask-rate", "sets mask_rate=0", train(MLM, "mask_rate=0"))
case("train-mlm-sequence", "sets sequence_length=2", train(MLM, "sequence_length=2"))
case("train-mlm-dataset", "sets dataset=wiki", train(MLM, "dataset=wiki"))
case("train-glue-task", "sets task=sst3", train(TAGS, "task=sst3"))
case("train-glue-loss", "sets loss=hinge", train(TAGS, "loss=hinge"))
case(
    "train-glue-positions",
    "sets max_positions=10000 beyond the base's 64",
    train(TAGS, "max_positions=10000", "limit=64", "epochs=1"),
    timeout=120,
)
case(
    "train-workdir-user-files",
    "trains in a folder of their own notes",
    train(LM, *TINY, workdir="project"),
    files={"project/notes.md": TEXT_FILE},
)
case(
    "train-workdir-file",
    "gives a file as --workdir",
    train(LM, workdir="run.txt"),
    files={"run.txt": TEXT_FILE},
)
case(
    "train-config-missing", "names a --config that does not exist", train(LM, extra=("--config", "cfg.json"))
)
case(
    "train-config-list",
    "writes --config as a JSON list",
    train(LM, extra=("--config", "cfg.json")),
    files={"cfg.json": "[1, 2]"},
)
case(
    "train-config-bool-number",
    'writes {"learning_rate": true} in --config',
    train(LM, extra=("--config", "cfg.json")),
    files={"cfg.json": '{"learning_rate": true}'},
)
case(
    "train-config-yaml",
    "gives a YAML --config",
    train(LM, extra=("--config", "cfg.yaml")),
    files={"cfg.yaml": "epochs: 2\n"},
)
case(
    "train-config-unknown",
    'writes {"epoch": 2} in --config',
    train(LM, extra=("--config", "cfg.json")),
    files={"cfg.json": '{"epoch": 2}'},
    advice="epochs",
)
case(
    "train-config-null",
    'writes {"epochs": null} in --config',
    train(LM, extra=("--config", "cfg.json")),
    files={"cfg.json": '{"epochs": null}'},
)


def _earlier_run(path):
    """A run folder of the LM-ResNet recipe with its default settings and a checkpoint."""
    from odezoo.recipes import get_recipe

    path.mkdir()
    (path / "config.json").write_text(json.dumps(get_recipe(LM)[1].settings()))
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "state.json").write_text('{"epoch": 3}')


case(
    "train-resume-changed",
    "resumes a run with another width",
    train(LM, "width=32"),
    files={"run": _earlier_run},
)

# --- Python API: loading and saving
case("load-int", "odezoo.load(20)", lambda c: odezoo.load(20))
case("load-none", "odezoo.load(None)", lambda c: odezoo.load(None))
case("load-list", "odezoo.load([name])", lambda c: odezoo.load([LM]))
case("load-num-classes-zero", "load(..., num_classes=0)", lambda c: odezoo.load(LM, num_classes=0))
case("load-num-classes-str", 'load(..., num_classes="5")', lambda c: odezoo.load(LM, num_classes="5"))
case("load-depth-override", "load(..., depth=56)", lambda c: odezoo.load(LM, depth=56))
case("load-unknown-override", "load(..., pretrained=True)", lambda c: odezoo.load(LM, pretrained=True))
case(
    "load-weights-flag-str",
    'load(..., load_weights="false")',
    lambda c: odezoo.load(LM, load_weights="false"),
)
case("load-dtype-int", 'load(..., dtype="int32")', lambda c: odezoo.load(LM, dtype="int32"))
case(
    "load-image-shape",
    "load(..., image_shape=(32, 32, 3))",
    lambda c: odezoo.load(LM, image_shape=(32, 32, 3)),
)
case(
    "load-wrong-class",
    "LMResNet.from_pretrained(a DURR preset)",
    lambda c: odezoo.LMResNet.from_pretrained(DURR),
)
case(
    "load-weights-file",
    "load(the weights file)",
    lambda c: odezoo.load("mine/model.weights.h5"),
    files={"mine": preset_copy(LM)},
    advice="folder",
)
case(
    "load-damaged-config",
    "loads a folder whose config.json they edited into invalid JSON",
    lambda c: odezoo.load("./mine"),
    files={"mine": preset_copy(LM, lambda f: (f / "config.json").write_text("{"))},
)
case(
    "load-truncated-weights",
    "loads a folder whose weights were cut short",
    lambda c: odezoo.load("./mine"),
    files={"mine": preset_copy(LM, lambda f: os.truncate(f / "model.weights.h5", 1000))},
)
case(
    "load-no-metadata",
    "loads a folder without metadata.json",
    lambda c: odezoo.load("./mine"),
    files={"mine": preset_copy(LM, lambda f: (f / "metadata.json").unlink())},
)
case("load-hf-empty", 'load("hf://")', lambda c: odezoo.load("hf://"))
case("get-preset-none", "get_preset(None)", lambda c: odezoo.get_preset(None))
case(
    "from-pretrained-file",
    "from_pretrained(a text file)",
    lambda c: odezoo.LMResNet.from_pretrained("notes.txt"),
    files={"notes.txt": TEXT_FILE},
)
case(
    "save-over-file",
    "save_pretrained onto their notes file",
    lambda c: c.model(LM).save_pretrained("notes.txt"),
    files={"notes.txt": TEXT_FILE},
)
case(
    "save-into-user-folder",
    "save_pretrained into a folder of their files",
    lambda c: c.model(LM).save_pretrained("project"),
    files={"project/data.csv": "a,b\n1,2\n"},
)
case(
    "save-asset-missing",
    "save_pretrained with an asset file that does not exist",
    lambda c: c.model(LM).save_pretrained("out", assets={"labels.txt": "labels.txt"}),
    advice="asset",
)
case(
    "save-asset-reserved",
    "save_pretrained with an asset named config.json",
    lambda c: c.model(LM).save_pretrained("out", assets={"config.json": "settings.json"}),
    files={"settings.json": '{"lr": 0.1}'},
)
case(
    "save-empty-path",
    'save_pretrained("") in a folder of their files',
    lambda c: c.model(LM).save_pretrained(""),
    files={"data.csv": "a,b\n"},
)
case("push-to-hub-bad-id", 'push_to_hub("my model")', lambda c: c.model(LM).push_to_hub("my model"))


# --- Python API: image classifiers
def _predict(transform, **kwargs):
    def run(c):
        x, _ = c.images(4)
        return c.model(LM).predict(transform(x), verbose=0, **kwargs)

    return run


case(
    "predict-file-list",
    "model.predict([file names])",
    lambda c: c.model(LM).predict(["shoe.png"]),
    files=SHOE,
    advice="file",
)
case(
    "predict-api-uint8",
    "model.predict(uint8 images)",
    _predict(lambda x: (x * 255).astype("uint8")),
    advice="255",
)
case("predict-api-0-255", "model.predict(float images in 0..255)", _predict(lambda x: x * 255), advice="255")
case(
    "predict-api-normalised",
    "model.predict(images already normalised)",
    _predict(lambda x: (x - 0.286) / 0.353),
)
case(
    "predict-api-rgb",
    "model.predict(RGB images) on a grey model",
    _predict(lambda x: np.repeat(x, 3, -1)),
    advice="channel",
)
case(
    "predict-api-size",
    "model.predict(32x32 images)",
    _predict(lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))),
)
case(
    "predict-api-extra-axis",
    "model.predict with an extra leading axis",
    _predict(lambda x: x[None]),
    advice=AXES,
)
case("predict-api-empty", "model.predict(an empty batch)", _predict(lambda x: x[:0]))
case("predict-api-bool", "model.predict(a boolean mask)", _predict(lambda x: x > 0.5))
case(
    "predict-api-nan",
    "model.predict with one NaN pixel",
    _predict(lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x)),
)
case("predict-api-batch-zero", "model.predict(x, batch_size=0)", _predict(lambda x: x, batch_size=0))


def _compiled(c):
    import keras

    model = c.fresh(LM)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _evaluate_uint8(c):
    x, y = c.images(16)
    return _compiled(c).evaluate((x * 255).astype("uint8"), y, verbose=0)


def _fit_uint8(c):
    x, y = c.images(16)
    return _compiled(c).fit((x * 255).astype("uint8"), y, epochs=1, batch_size=8, verbose=0).history


case("evaluate-uint8", "model.evaluate(uint8 images, labels)", _evaluate_uint8, timeout=120)
case("fit-uint8", "fine-tunes with model.fit(uint8 images, labels)", _fit_uint8, timeout=120)
case("call-uint8", "model(uint8 images)", lambda c: c.model(LM)((c.images(2)[0] * 255).astype("uint8")))
case(
    "call-list-0-255",
    "model(nested list of 0..255 values)",
    lambda c: c.model(LM)((c.images(2)[0] * 255).tolist()),
)
case(
    "preprocess-missing",
    "preprocess_images([missing file])",
    lambda c: odezoo.preprocess_images(["boot.png"], c.model(LM)),
)
case(
    "preprocess-float-0-255",
    "preprocess_images(float image in 0..255)",
    lambda c: odezoo.preprocess_images(c.images(1)[0][0, ..., 0] * 255, c.model(LM)),
)
case(
    "preprocess-shape-2d",
    "preprocess_images(..., shape=(28, 28))",
    lambda c: odezoo.preprocess_images(["shoe.png"], (28, 28)),
    files=SHOE,
)
case("preprocess-empty", "preprocess_images([], model)", lambda c: odezoo.preprocess_images([], c.model(LM)))
case(
    "preprocess-channels-first",
    "preprocess_images(a channels-first array)",
    lambda c: odezoo.preprocess_images(np.zeros((3, 32, 32), "uint8"), c.model(LM)),
)
case(
    "preprocess-negative-int",
    "preprocess_images(int16 image with negatives)",
    lambda c: odezoo.preprocess_images(np.full((28, 28), -5, "int16"), c.model(LM)),
)
case(
    "preprocess-preset-name",
    "preprocess_images(files, a preset name) instead of the model",
    lambda c: odezoo.preprocess_images(["shoe.png"], LM),
    files=SHOE,
    advice="model",
)
case(
    "preprocess-folder",
    "preprocess_images(a folder)",
    lambda c: odezoo.preprocess_images("photos", c.model(LM)),
    files={"photos/a.png": png(28, 28)},
)
case("freeze-trunk-durr", "freeze_trunk() on a restorer", lambda c: c.fresh(DURR).freeze_trunk())
case("smallcnn-classes-zero", "SmallCNN(num_classes=0)", lambda c: odezoo.SmallCNN(num_classes=0))
case("smallcnn-image-2d", "SmallCNN(image_shape=(28, 28))", lambda c: odezoo.SmallCNN(image_shape=(28, 28)))
case("lmresnet-depth", "LMResNet(depth=21)", lambda c: odezoo.LMResNet(depth=21))
case(
    "lmresnet-death-rate",
    "LMResNet(depth=20, death_rate=1.0)",
    lambda c: odezoo.LMResNet(depth=20, death_rate=1.0),
)
case(
    "mf-reorder-repeat",
    "reorder_blocks with a repeated block",
    lambda c: c.model(MF).reorder_blocks([0, 0, 1, 2, 3, 4, 5, 6]),
)
case("mf-grow-zero", "grow(0)", lambda c: c.model(MF).grow(0))
case("mf-widen-fraction", "widen(1.5)", lambda c: c.model(MF).widen(1.5))

# --- Python API: restoration
case(
    "restore-api-uint8",
    "restore(uint8 images)",
    lambda c: c.model(DURR).restore((c.noisy() * 255).astype("uint8")),
)
case(
    "restore-api-steps-float", "restore(x, steps=2.5)", lambda c: c.model(DURR).restore(c.noisy(), steps=2.5)
)
case(
    "restore-api-max-steps-negative",
    "restore(x, max_steps=-1)",
    lambda c: c.model(DURR).restore(c.noisy(), max_steps=-1),
)
case(
    "restore-api-steps-true", "restore(x, steps=True)", lambda c: c.model(DURR).restore(c.noisy(), steps=True)
)
case(
    "restore-api-rgb",
    "restore(RGB images) on a grey model",
    lambda c: c.model(DURR).restore(c.noisy(channels=3)),
    advice="channel",
)
case(
    "restore-api-0-255",
    "restore(float images in 0..255)",
    lambda c: c.model(DURR).restore(c.noisy() * 255),
    advice="255",
)
case(
    "restore-api-extra-axis",
    "restore with an extra leading axis",
    lambda c: c.model(DURR).restore(c.noisy()[None]),
    advice=AXES,
)
case("durr-channels-two", "DURR(channels=2)", lambda c: odezoo.DURR(channels=2))
case("durr-depth-zero", "DURR(depth=0)", lambda c: odezoo.DURR(depth=0))


def _degrade(**kwargs):
    def run(c):
        from odezoo.data.restoration import degrade

        return degrade(c.noisy(count=2), **kwargs)

    return run


case("degrade-sigma-negative", "degrade(x, sigma=-5)", _degrade(sigma=-5))
case("degrade-quality-fraction", "degrade(x, quality=50.5)", _degrade(quality=50.5))


# --- Python API: text
def _translate(sentences, **kwargs):
    return lambda c: c.model(MT).translate(sentences, **kwargs)


case("translate-api-str", "translate(one string)", _translate("Guten Morgen"), advice="list")
case("translate-api-empty", "translate([])", _translate([]))
case("translate-api-none", 'translate(["Hallo", None])', _translate(["Hallo", None]))
case("translate-api-bytes", 'translate([b"Hallo"])', _translate([b"Hallo"]))
case("translate-api-nested", 'translate([["Hallo", "Welt"]])', _translate([["Hallo", "Welt"]]))
case("translate-api-beam-str", 'translate(..., beam="5")', _translate(["Hallo"], beam="5"))
case("translate-api-batch-zero", "translate(..., batch_size=0)", _translate(["Hallo"], batch_size=0))
case("translate-api-max-len-a", "translate(..., max_len_a=500)", _translate(["Hallo Welt"], max_len_a=500))
case("translate-api-max-len-b", "translate(..., max_len_b=-1)", _translate(["Hallo"], max_len_b=-1))
case(
    "translate-api-lenpen-inf",
    'translate(..., lenpen=float("inf"))',
    _translate(["Hallo"], lenpen=float("inf")),
)
case("translate-api-tokenizer-str", 'translate(..., tokenizer="bpe")', _translate(["Hallo"], tokenizer="bpe"))
case(
    "translate-api-generator",
    "translate(a generator of sentences)",
    lambda c: c.model(MT).translate(s for s in ["Hallo", "Welt"]),
    ok=lambda value: isinstance(value, list) and len(value) == 2,
)
case("fillmask-api-str", "fill_mask(one string)", lambda c: c.model(MLM).fill_mask("the <mask> is here"))
case(
    "fillmask-api-topk-zero",
    "fill_mask(..., top_k=0)",
    lambda c: c.model(MLM).fill_mask(["the <mask> is here"], top_k=0),
)
case(
    "fillmask-api-topk-fraction",
    "fill_mask(..., top_k=2.5)",
    lambda c: c.model(MLM).fill_mask(["the <mask> is here"], top_k=2.5),
)
case(
    "fillmask-api-classifier",
    "fill_mask on the tagger",
    lambda c: c.model(TAGS).fill_mask(["the <mask> is here"]),
)
case(
    "fillmask-api-capital",
    'fill_mask(["<MASK> is here"])',
    lambda c: c.model(MLM).fill_mask(["<MASK> is here"]),
    advice="<mask>",
)
case(
    "fillmask-api-batch-zero",
    "fill_mask(..., batch_size=0)",
    lambda c: c.model(MLM).fill_mask(["a <mask>"], batch_size=0),
)


def _tags_inputs(c, **changes):
    ids = np.array([[5, 40, 41, 2]], "int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    return {**inputs, **changes}


case(
    "tags-api-strings",
    "tagger.predict(array of strings)",
    lambda c: c.model(TAGS).predict(np.array(["a word"]), verbose=0),
)
case(
    "tags-api-out-of-vocabulary",
    "tagger.predict(ids beyond the vocabulary)",
    lambda c: c.model(TAGS).predict(_tags_inputs(c, token_ids=np.array([[10**6, 5, 6, 2]])), verbose=0),
)
case(
    "tags-api-float-ids",
    "tagger.predict(float ids)",
    lambda c: c.model(TAGS).predict(_tags_inputs(c, token_ids=np.array([[5.0, 40.0, 41.0, 2.0]])), verbose=0),
)
case(
    "tags-api-no-mask",
    "tagger.predict(dict without padding_mask)",
    lambda c: c.model(TAGS).predict(
        {k: v for k, v in _tags_inputs(c).items() if k != "padding_mask"}, verbose=0
    ),
)
case(
    "tags-api-1d",
    "tagger.predict(1-D ids)",
    lambda c: c.model(TAGS).predict({k: v[0] for k, v in _tags_inputs(c).items()}, verbose=0),
    advice=AXES,
)
case(
    "tags-api-zero-length",
    "tagger.predict(ids of length 0)",
    lambda c: c.model(TAGS).predict({k: v[:, :0] for k, v in _tags_inputs(c).items()}, verbose=0),
)
case(
    "mt-api-one-array",
    "translator.predict(one array of ids)",
    lambda c: c.model(MT).predict(np.array([[5, 6, 2]]), verbose=0),
)


# --- Python API: PDE models
def _rollout(model, transform=lambda u: u, steps=2):
    return lambda c: c.model(model).rollout(transform(c.field(c.model(model))), steps)


case("rollout-steps-negative", "rollout(u0, -1)", _rollout(HEAT, steps=-1))
case("rollout-steps-float", "rollout(u0, 2.0)", _rollout(HEAT, steps=2.0))
case(
    "rollout-grid-64",
    "rollout on a 64x64 field",
    _rollout(HEAT, lambda u: np.repeat(np.repeat(u, 2, 1), 2, 2)),
    advice="grid",
)
case("rollout-complex", "rollout on a complex field", _rollout(HEAT, lambda u: u + 0j))
case(
    "rollout-not-periodic",
    "rollout on a ramp (not periodic)",
    _rollout(HEAT, lambda u: u + np.linspace(0, 10, u.shape[1])[None, :, None, None]),
)
case(
    "rollout-one-channel-burgers",
    "rollout(u only) on Burgers (u, v)",
    _rollout(BURGERS, lambda u: u[..., :1]),
    advice="channel",
)
case("rollout-2d-field", "rollout on one 2-D field", _rollout(HEAT, lambda u: u[0, ..., 0]), advice=AXES)
case("rollout-file-name", 'rollout("u0.npy", 3)', lambda c: c.model(HEAT).rollout("u0.npy", 3))
case("expression-negative", "expression(threshold=-1)", lambda c: c.model(HEAT).expression(threshold=-1))
case("expression-huge", "expression(threshold=1e6)", lambda c: c.model(HEAT).expression(threshold=1e6))
case(
    "pdenet2-kernel",
    "PDENet2(kernel_size=6)",
    lambda c: odezoo.PDENet2(channels=("u",), grid=32, dt=0.01, kernel_size=6),
)
case("pdenet2-grid-small", "PDENet2(grid=3)", lambda c: odezoo.PDENet2(channels=("u",), grid=3, dt=0.01))
case(
    "pdenet2-channels-repeat",
    'PDENet2(channels=("u", "u"))',
    lambda c: odezoo.PDENet2(channels=("u", "u"), grid=32, dt=0.01),
)

# --- Python API: attacks and adversarial training
case("attack-step-over-eps", "Attack(eps=0.1, step=0.2)", lambda c: odezoo.Attack(eps=0.1, step=0.2))
case(
    "attack-eps-255",
    "Attack(eps=8, step=2) on the 0..255 scale",
    lambda c: odezoo.Attack(eps=8, step=2),
    advice="255",
)
case("attack-eps-nan", "Attack(eps=nan)", lambda c: odezoo.Attack(eps=float("nan"), step=0.01))
case("attack-eps-str", 'Attack(eps="0.1")', lambda c: odezoo.Attack(eps="0.1", step=0.01))
case("attack-n-negative", "Attack(n=-1)", lambda c: odezoo.Attack(eps=0.1, step=0.01, n=-1))
case("attack-m-zero", "Attack(m=0)", lambda c: odezoo.Attack(eps=0.1, step=0.01, m=0))
case("attack-none", "Attack(eps=None, step=None)", lambda c: odezoo.Attack(eps=None, step=None))


def _pgd(transform=lambda x: x, **budget):
    def run(c):
        x, y = c.images(4)
        return odezoo.pgd(c.model(CNN), transform(x), y, **{"eps": 0.1, "step": 0.01, "steps": 2, **budget})

    return run


case("pgd-uint8", "pgd(uint8 images)", _pgd(lambda x: (x * 255).astype("uint8")))
case("pgd-eps-255", "pgd(eps=8, step=2)", _pgd(eps=8, step=2))
case("pgd-steps-negative", "pgd(steps=-1)", _pgd(steps=-1))


def _robust(data=None, **kwargs):
    def run(c):
        x, y = c.images(8)
        given = data(x, y) if data else (x, y)
        return odezoo.robust_evaluate(c.model(CNN), given, **{"eps": 0.1, "step": 0.01, "steps": 1, **kwargs})

    return run


case("robust-batch-zero", "robust_evaluate(..., batch_size=0)", _robust(batch_size=0))
case("robust-labels-range", "robust_evaluate with labels 10..19", _robust(lambda x, y: (x, y + 10)))
case("robust-dict", 'robust_evaluate(model, {"x": x, "y": y})', _robust(lambda x, y: {"x": x, "y": y}))
case("robust-uint8", "robust_evaluate(uint8 images)", _robust(lambda x, y: ((x * 255).astype("uint8"), y)))


def _trainer(**kwargs):
    def run(c):
        settings = {"method": "pgd", "attack": odezoo.Attack(eps=0.1, step=0.01, steps=2), **kwargs}
        return odezoo.AdversarialTrainer(c.fresh(CNN), **settings)

    return run


case("trainer-method-capital", 'AdversarialTrainer(method="PGD")', _trainer(method="PGD"))
case("trainer-attack-none", "AdversarialTrainer(attack=None)", _trainer(attack=None))
case("trainer-attack-tuple", "AdversarialTrainer(attack=(0.1, 0.01, 10))", _trainer(attack=(0.1, 0.01, 10)))
case(
    "trainer-beta-negative",
    'AdversarialTrainer(method="trades", beta=-1)',
    _trainer(method="trades", beta=-1.0),
)
case(
    "trainer-first-layer-typo",
    "AdversarialTrainer(yopo, first_layer=a wrong name)",
    _trainer(method="yopo", first_layer="conv_first"),
)
case("trainer-clipnorm-zero", "AdversarialTrainer(clipnorm=0)", _trainer(clipnorm=0))
case(
    "trainer-rule-capital",
    'AdversarialTrainer(first_layer_rule="Official")',
    _trainer(method="yopo", first_layer="conv1", first_layer_rule="Official"),
)
case(
    "trainer-model-name",
    "AdversarialTrainer(a preset name)",
    lambda c: odezoo.AdversarialTrainer(CNN, method="natural", attack=odezoo.Attack(0.1, 0.01)),
)

# --- Python API: data
case("simulate-api-batch-zero", 'simulate("heat", batch=0)', lambda c: odezoo.simulate("heat", batch=0))
case(
    "simulate-api-start-negative",
    'simulate("heat", start_time=-1)',
    lambda c: odezoo.simulate("heat", batch=1, start_time=-1),
)
case(
    "simulate-api-seed-float",
    'simulate("heat", seed=1.5)',
    lambda c: odezoo.simulate("heat", batch=1, seed=1.5),
)
case(
    "simulate-api-steps-str",
    'simulate("heat", steps="5")',
    lambda c: odezoo.simulate("heat", batch=1, steps="5"),
)
case(
    "simulate-api-noise-word",
    'simulate("heat", noise="high")',
    lambda c: odezoo.simulate("heat", batch=1, noise="high"),
)


def _image_dataset(**kwargs):
    def run(c):
        from odezoo.data.images import image_dataset

        ds, count = image_dataset("fashion_mnist", "sample", **{"batch_size": 32, **kwargs})
        return count, sum(int(x.shape[0]) for x, _ in ds)

    return run


case("image-dataset-batch-zero", "image_dataset(..., batch_size=0)", _image_dataset(batch_size=0))
case("image-dataset-limit-negative", "image_dataset(..., limit=-5)", _image_dataset(limit=-5))
case("image-dataset-holdout-all", "image_dataset(..., holdout=1000) of 1000", _image_dataset(holdout=1000))
case(
    "get-dataset-capital",
    'get_dataset("Fashion_MNIST")',
    lambda c: __import__("odezoo.data.images").data.images.get_dataset("Fashion_MNIST"),
)


def _load_trajectories(c):
    from odezoo.data.pde import load_trajectories

    return load_trajectories("u.npy")


case("trajectories-missing", "load_trajectories(a missing file)", _load_trajectories)
case(
    "trajectories-npy",
    "load_trajectories(a .npy array)",
    _load_trajectories,
    files={"u.npy": lambda p: np.save(p, np.zeros((2, 3)))},
)


def _read_idx(c):
    from odezoo.data.images import read_idx

    return read_idx("train-images-idx3-ubyte.gz")


case(
    "idx-not-gzip",
    "read_idx(an unzipped IDX file named .gz)",
    _read_idx,
    files={"train-images-idx3-ubyte.gz": b"\x00\x00\x08\x03" + b"\x00" * 12},
)
case(
    "idx-empty-gzip",
    "read_idx(an empty .gz)",
    _read_idx,
    files={"train-images-idx3-ubyte.gz": gzip.compress(b"")},
)
case(
    "dictionary-missing",
    "dictionary_pairs(a missing file)",
    lambda c: __import__("odezoo.data.text").data.text.dictionary_pairs("de-en.txt"),
)
case(
    "dictionary-split",
    'dictionary_corpus("dev")',
    lambda c: __import__("odezoo.data.text").data.text.dictionary_corpus("dev"),
)
case(
    "clean-images-split",
    'clean_images("skimage_photos", "val")',
    lambda c: __import__("odezoo.data.restoration").data.restoration.clean_images(
        "skimage_photos", "val", channels=1
    ),
)

# --- the environment (a process of its own)
case(
    "predict-input-terminal",
    "runs --input - at a terminal without piping anything",
    Proc(("predict", MT, "--input", "-"), terminal=True),
    timeout=40,
)
case("stdout-full", "sends `odezoo list` to a full disk (/dev/full)", Proc(("list",), stdout="/dev/full"))
case(
    "keras-backend-torch",
    "has KERAS_BACKEND=torch set without torch installed",
    Proc(("predict", LM, "--sample", "1"), env={"KERAS_BACKEND": "torch"}),
    timeout=120,
)
case(
    "hf-cache-is-file",
    "points HF_HUB_CACHE at a file",
    Proc(("info", "hf://odezoo/lm_resnet20_fashion_mnist"), env={"HF_HUB_CACHE": "cache.txt"}),
    files={"cache.txt": TEXT_FILE},
    timeout=120,
)


# ----------------------------------------------------------------------------- running the table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--only", nargs="*", default=[], help="run the cases whose id holds one of these")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per case (default 60)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    ids = [c.id for c in CASES]
    if len(ids) != len(set(ids)):
        raise SystemExit(f"duplicate case ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    cases = [c for c in CASES if not args.only or any(part in c.id for part in args.only)]
    if args.list:
        print("\n".join(f"{c.id:36} {c.what}" for c in cases))
        return
    print(f"odezoo {odezoo.__version__} from {PACKAGE}; {len(cases)} cases", flush=True)
    import tensorflow as tf  # noqa: F401  (started once, before the first case's clock)

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    _install_training_hook()
    ctx = Context()
    results = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="odezoo-mistakes-") as tmp:
        root = Path(tmp)
        for index, c in enumerate(cases, 1):
            result = run_case(c, ctx, root, args.timeout, index)
            results.append(result)
            print(f"{index:3} {result['id']:36} {result['kind']:9} {result['outcome'][:150]}", flush=True)
    counts = {kind: sum(r["kind"] == kind for r in results) for kind in KINDS}
    seconds = time.perf_counter() - start
    print(f"\n{len(results)} cases in {seconds:.0f} s: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for kind in KINDS[1:]:
        for r in results:
            if r["kind"] == kind:
                print(f"  {kind:9} {r['id']}: {r['outcome'][:200]}")
    if args.json:
        report = {
            "odezoo": str(PACKAGE),
            "version": odezoo.__version__,
            "seconds": round(seconds),
            "counts": counts,
            "cases": results,
        }
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
