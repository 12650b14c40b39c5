"""`odezoo list | info | predict | eval | train | export | push`, and the commands the families declare
(`odezoo.commands`): parses and dispatches only.

Each command imports what it needs inside its function (deferred: parsing and `odezoo list` start no
TensorFlow)."""

import argparse
import contextlib
import errno
import importlib
import json
import os
import sys
import warnings
from pathlib import Path

from odezoo._files import atomic_write, check_output, json_text
from odezoo._native_output import captured_native_output
from odezoo._version import __version__
from odezoo.errors import OdezooError, OdezooWarning


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    parser = _Parser(prog="odezoo", description=__doc__)
    parser.add_argument("--version", action="version", version=f"odezoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list the presets")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern")
    p.add_argument("--markdown", action="store_true", help="print the README's preset table")

    def preset_parser(name, help):
        p = sub.add_parser(name, help=help)
        p.add_argument("preset", help="preset name, local preset folder or hf://org/repo")
        p.add_argument("--revision", help="Hub branch, tag or commit")
        return p

    preset_parser("info", "show a preset's metadata")

    p = preset_parser("predict", "run a preset on image files (or bundled samples) or sentences")
    p.add_argument(
        "inputs",
        nargs="*",
        help="image files (PNG/JPEG/BMP/GIF/WebP) or folders of them, or texts: sentences to translate or "
        "classify (a pair: two sentences separated by a tab), texts with <mask> to fill",
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="FILE",
        help="read more inputs from FILE, one a line (blank lines skipped; a pair: two sentences separated "
        "by a tab); - reads standard input",
    )
    p.add_argument("--output", metavar="FILE", help="write the JSON to FILE instead of standard output")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="let --output and the files predict writes replace existing files",
    )
    _task_options(p, "predict")

    p = preset_parser("eval", "evaluate a preset as its task does (accuracy, rollout error, ...), as JSON")
    _task_options(p, "eval")

    commands, converters = _family_commands()
    for command in commands:
        command.add_to(sub)

    p = sub.add_parser("train", help="run a training recipe")
    p.add_argument("recipe", help="recipe name (`odezoo train --list` lists them)")
    p.add_argument(
        "--list",
        nargs="?",
        metavar="RECIPE",
        action=_ListRecipes,
        help="list the recipes, or RECIPE's settings (name, type, default: what --set and --config change); "
        "then exit",
    )
    p.add_argument(
        "--workdir", required=True, help="run folder: checkpoints, metrics, preset (resumed if present)"
    )
    p.add_argument("--config", help="JSON file of recipe settings")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="change one recipe setting"
    )

    p = preset_parser("export", "export to SavedModel, TFLite or ONNX and check it against Keras")
    p.add_argument("--format", required=True, choices=["saved_model", "tflite", "onnx"])
    p.add_argument(
        "--quantize", choices=["dynamic", "float16", "int8"], help="TFLite post-training quantisation"
    )
    p.add_argument("--allow-flex", action="store_true", help="let TFLite fall back to TensorFlow (Flex) ops")
    p.add_argument("--output-dir", default="export", help="artifacts go to OUTPUT_DIR/<preset>/<format>/")

    p = sub.add_parser(
        "manifest", help="redo every export of the published presets, recorded in MANIFEST.json"
    )
    p.add_argument("presets", nargs="*", help="only these presets (default: every published one)")
    p.add_argument("--output-dir", default="export", help="artifacts go to OUTPUT_DIR/<preset>/<format>/")

    p = preset_parser("push", "upload a preset folder to the Hugging Face Hub")
    p.add_argument("repo_id", help="<org>/<name> on the Hub")
    p.add_argument("--private", action="store_true")

    if converters:
        p = sub.add_parser("convert", help="write a preset folder from another framework's checkpoint")
        frameworks = p.add_subparsers(dest="framework", required=True, parser_class=_Parser)
        for converter in converters:
            converter.add_to(frameworks)
    return parser


def _task_options(parser, kind):
    """Adds every task's `predict` / `eval` options; each task refuses the others' (`eval.check_options`)."""
    from odezoo.tasks import all_tasks

    options, takers = {}, {}  # option name -> its first declaration; -> {help text: the tasks declaring it}
    for task in all_tasks():
        for option in getattr(task, f"{kind}_options"):
            if options.setdefault(option.name, option).type is not option.type:
                raise TypeError(f"Tasks declare {option.flag} with two types.")
            takers.setdefault(option.name, {}).setdefault(option.help, []).append(task.name)
    for name, option in options.items():
        parser.add_argument(
            option.flag,
            dest=name,
            type=option.type,
            choices=option.choices,
            default=argparse.SUPPRESS,
            help="; ".join(f"{text} [{', '.join(tasks)}]" for text, tasks in takers[name].items()),
        )


class _ListRecipes(argparse.Action):
    """`odezoo train --list [RECIPE]` (or `odezoo train RECIPE --list`): the recipe names, or a recipe's
    settings; then exits, as `--help` does (no `--workdir` needed)."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            _start_tensorflow()  # the recipes import Keras
            print(_recipe_listing(values or getattr(namespace, "recipe", None)))
        except OdezooError as error:
            parser.exit(2, f"{parser.prog}: error: {error}\n")
        sys.stdout.flush()  # a closed stdout is met here, in `main`
        parser.exit()


def _recipe_listing(recipe):
    """The recipe names, one a line; or the settings of `recipe`: name, type and default, one a line."""
    from odezoo.recipes import RECIPES, get_recipe

    if not recipe:
        return "\n".join(sorted(RECIPES))
    _, config = get_recipe(recipe)
    rows = [("setting", "type", "default")]
    rows += [(name, type(value).__name__, json.dumps(value)) for name, value in config.settings().items()]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{name:<{width[0]}}  {kind:<{width[1]}}  {default}" for name, kind, default in rows)


def _options(args):
    """The task options given on the command line (absent ones keep the task's defaults)."""
    common = {"command", "preset", "revision", "inputs", "input", "output", "overwrite"}
    return {k: v for k, v in vars(args).items() if k not in common}


def main(argv=None):
    try:
        code = _main(argv)
        sys.stdout.flush()  # a full disk (`> /dev/full`) shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # stdout's reader has gone (`odezoo info X | head`): stop quietly, as Python's documentation says
        # (signal, "Note on SIGPIPE"): what is left goes to devnull, not to a traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"odezoo: error: cannot write the output: {error.strerror}; free some space.", file=sys.stderr)
        return 1


def _main(argv):
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        _odezoo_warnings_as_lines(args.command)
        return _run(args)


def _odezoo_warnings_as_lines(command):
    """Prints each `OdezooWarning` as one line on stderr, `odezoo COMMAND: warning: ...` (others as usual)."""
    show = warnings.showwarning

    def one_line(message, category, *rest, **kwargs):
        if issubclass(category, OdezooWarning):
            print(f"odezoo {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *rest, **kwargs)

    warnings.showwarning = one_line


def _run(args):
    try:
        if args.command != "list" or args.markdown:  # listing names reads the registry only
            _start_tensorflow()
        result = _command(args)
    except OdezooError as error:
        print(f"odezoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"odezoo {args.command}: interrupted", file=sys.stderr)
        return 130
    if result is not None:
        print(json_text(result, indent=2))
    sys.stdout.flush()  # a closed stdout is met here, in `main`
    return 0


def _family_commands():
    """`(commands, converters)`: the `COMMANDS` and `CONVERTERS` the families declare in their
    `<family>_commands.py` (see `odezoo.commands`)."""
    from odezoo.models import families

    commands, converters = [], []
    for family in families():
        name = f"odezoo.models.{family}.{family}_commands"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        commands += getattr(module, "COMMANDS", ())
        converters += getattr(module, "CONVERTERS", ())
    return commands, converters


def _command(args):
    """Runs the command `args` names: odezoo's own, or one a family declares."""
    if args.command in COMMANDS:
        return COMMANDS[args.command](args)
    commands, converters = _family_commands()
    if args.command == "convert":
        return next(c for c in converters if c.name == args.framework).function()(args)
    command = next(c for c in commands if c.name == args.command)
    if not command.on_preset:
        return command.function()(args)
    from odezoo.zoo import load_resolved

    resolved = _resolve(args)
    return command.function()(args, model=load_resolved(resolved), metadata=resolved.metadata)


def _resolve(args):
    """The folder of `args.preset` (`zoo.resolve`); where the name is a registered preset's and a local
    folder of that name was not used, a note on stderr says so."""
    from odezoo.zoo import resolve

    resolved = resolve(args.preset, revision=args.revision)
    if resolved.note:
        print(f"odezoo {args.command}: note: {resolved.note}", file=sys.stderr)
    return resolved


def _start_tensorflow():
    """Imports TensorFlow with its C++ start-up log lines kept off the terminal (shown if it fails)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with captured_native_output():
        import tensorflow as tf

        tf.config.list_physical_devices()


def _list(args):
    from odezoo.presets import list_presets
    from odezoo.zoo import preset_table

    names = list_presets(args.pattern)
    if not names:
        raise OdezooError(f"No preset matches {args.pattern!r}; `odezoo list` shows them all.")
    print(preset_table(names) if args.markdown else "\n".join(names))
    return None


def _info(args):
    resolved = _resolve(args)
    resolved.verify()  # a damaged folder is reported, not described
    return {"folder": str(resolved.folder), **resolved.metadata}


def _predict(args):
    from odezoo.eval import check_options
    from odezoo.zoo import load_resolved

    if args.output is not None:
        _check_output(args.output, args.overwrite)
    inputs = [*args.inputs, *_input_lines(args.input)]
    resolved = _resolve(args)
    model, metadata, options = load_resolved(resolved), resolved.metadata, _options(args)
    check_options(model.task, options, "predict", args.preset)
    if model.task.writes_files:
        options["overwrite"] = args.overwrite
    result = model.task.predict(model, metadata, inputs, **options)
    if args.output is None:
        return result
    try:
        with atomic_write(args.output) as f:
            f.write(json_text(result, indent=2) + "\n")
    except OSError as error:
        raise OdezooError(
            f"Cannot write --output {args.output}: {error.strerror or error}. Free some space or choose a "
            "writable file."
        ) from None
    return None


def _input_lines(paths):
    """The inputs of the `--input` files (`-`: standard input): their lines in order, without the line
    ends, blank ones left out; a file without any is refused."""
    lines = []
    for path in paths:
        try:
            if path == "-":
                if sys.stdin.isatty():  # nothing piped in: say what it waits for
                    print("odezoo: reading lines from stdin; end with Ctrl-D", file=sys.stderr, flush=True)
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
            raise OdezooError(f"Cannot read --input {path} ({reason}).") from None
        found = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
        if not found:
            raise OdezooError(f"--input {path} holds no inputs: write one a line.")
        lines += found
    return lines


def _check_output(path, overwrite):
    """Refuses an `--output` file that would replace a folder, or an existing file without `--overwrite`,
    before anything runs; creates its folder."""
    check_output(path, overwrite, "--output", "JSON file")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OdezooError(
            f"Cannot create the folder of --output {path}: {error.strerror or error}."
        ) from None


def _eval(args):
    from odezoo.eval import evaluate
    from odezoo.zoo import load_resolved

    resolved = _resolve(args)
    model, metadata = load_resolved(resolved), resolved.metadata
    result = evaluate(model, metadata=metadata, **_options(args))
    return {"preset": args.preset, "folder": str(resolved.folder), **result}


def _train(args):
    from odezoo.recipes import get_recipe

    train, config = get_recipe(args.recipe)
    changes = {}
    if args.config:
        try:
            with open(args.config) as f:
                settings = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            raise OdezooError(f"Cannot read --config {args.config!r}: {error}.") from None
        if not isinstance(settings, dict):
            raise OdezooError(
                f"--config {args.config!r} holds a JSON {type(settings).__name__}; write an object of "
                'settings, e.g. {"epochs": 2}.'
            )
        changes.update(settings)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise OdezooError(f"--set takes KEY=VALUE. Received: --set {item!r}")
        changes[key] = value
    config = config.configure(changes, args.recipe)
    with contextlib.redirect_stdout(sys.stderr):  # progress and notes; stdout is the final JSON alone
        return train(config, args.workdir)


def _export(args):
    from odezoo.export import export_preset

    return export_preset(
        args.preset,
        args.format,
        output_dir=args.output_dir,
        quantize=args.quantize,
        allow_flex=args.allow_flex,
        revision=args.revision,
    )


def _manifest(args):
    from odezoo.export import write_manifest

    problems = write_manifest(args.output_dir, args.presets)
    if problems:
        raise OdezooError(
            f"{len(problems)} export(s) failed (the others are recorded): " + "; ".join(problems)
        )
    return {"manifest": str(Path(args.output_dir) / "MANIFEST.json")}


def _push(args):
    from odezoo.hub import push_folder

    resolved = _resolve(args)
    resolved.verify()  # a damaged or incomplete folder is reported, not published
    return {"commit_url": push_folder(resolved.folder, args.repo_id, private=args.private)}


COMMANDS = {
    "list": _list,
    "info": _info,
    "predict": _predict,
    "eval": _eval,
    "train": _train,
    "export": _export,
    "manifest": _manifest,
    "push": _push,
}

if __name__ == "__main__":
    sys.exit(main())
