"""`odezoo list | info | predict | eval | simulate | train | export | push | convert` (parses and dispatches
only)."""

import argparse
import dataclasses
import difflib
import json
import os
import sys

from odezoo._native_output import captured_native_output
from odezoo.errors import OdezooError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    parser = _Parser(prog="odezoo", description=__doc__)
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
    p.add_argument("inputs", nargs="*", help="image files (PNG/JPEG/BMP/GIF), or sentences to translate")
    _task_options(p, "predict")

    p = preset_parser("eval", "evaluate a preset as its task does (accuracy, rollout error, ...), as JSON")
    _task_options(p, "eval")

    p = sub.add_parser("simulate", help="write simulated PDE trajectories (.npz) for training")
    p.add_argument("equation", help="burgers2d, heat, cdr, linear_cd or nonlinear_diffusion")
    p.add_argument("--n", type=int, default=8, help="number of trajectories")
    p.add_argument(
        "--steps", type=int, default=20, help="time steps (of the equation's dt) after the first frame"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--noise", type=float, help="noise level relative to each initial frame's std (default: the paper's)"
    )
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("train", help="run a training recipe")
    p.add_argument("recipe")
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

    p = preset_parser("push", "upload a preset folder to the Hugging Face Hub")
    p.add_argument("repo_id", help="<org>/<name> on the Hub")
    p.add_argument("--private", action="store_true")

    p = sub.add_parser("convert", help="write a preset folder from another framework's checkpoint")
    p.add_argument(
        "framework", choices=["fairseq"], help="fairseq: Macaron Net translation models and Macaron-BERT"
    )
    p.add_argument("checkpoint", help="the checkpoint file (checkpoint_*.pt)")
    p.add_argument("--dict", required=True, dest="dictionary", help="the dict.txt it was trained with")
    p.add_argument(
        "--bpe-codes", help="subword-nmt or fastBPE codes of its data (for a dictionary of @@ subwords)"
    )
    p.add_argument("--out", required=True, help="the preset folder to write")
    return parser


def _task_options(parser, kind):
    """Adds every task's `predict` / `eval` options; each task refuses the others' (`eval.check_options`)."""
    from odezoo.tasks import all_tasks

    options, takers = {}, {}
    for task in all_tasks():
        for option in getattr(task, f"{kind}_options"):
            if options.setdefault(option.name, option).type is not option.type:
                raise TypeError(f"Tasks declare {option.flag} with two types.")
            takers.setdefault(option.name, []).append(task.name)
    for name, option in options.items():
        parser.add_argument(
            option.flag,
            dest=name,
            type=option.type,
            choices=option.choices,
            default=argparse.SUPPRESS,
            help=f"{option.help} [{', '.join(takers[name])}]",
        )


def _options(args):
    """The task options given on the command line (absent ones keep the task's defaults)."""
    common = {"command", "preset", "revision", "inputs"}
    return {k: v for k, v in vars(args).items() if k not in common}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command != "list" or args.markdown:  # listing names reads the registry only
            _start_tensorflow()
        result = COMMANDS[args.command](args)
    except OdezooError as error:
        print(f"odezoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"odezoo {args.command}: interrupted", file=sys.stderr)
        return 130
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


def _start_tensorflow():
    """Imports TensorFlow with its C++ start-up log lines kept off the terminal (shown if it fails)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with captured_native_output():
        import tensorflow as tf

        tf.config.list_physical_devices()


def _list(args):
    from odezoo.cards import preset_table
    from odezoo.presets import list_presets

    names = list_presets(args.pattern)
    if not names:
        raise OdezooError(f"No preset matches {args.pattern!r}; `odezoo list` shows them all.")
    print(preset_table(names) if args.markdown else "\n".join(names))
    return None


def _info(args):
    from odezoo.zoo import resolve

    resolved = resolve(args.preset, revision=args.revision)
    resolved.verify()  # a damaged folder is reported, not described
    return {"folder": str(resolved.folder), **resolved.metadata}


def _predict(args):
    from odezoo.eval import check_options
    from odezoo.zoo import resolve

    resolved = resolve(args.preset, revision=args.revision)
    model, metadata, options = resolved.load(), resolved.metadata, _options(args)
    check_options(model.task, options, "predict", args.preset)
    return model.task.predict(model, metadata, args.inputs, **options)


def _eval(args):
    from odezoo.eval import evaluate
    from odezoo.zoo import resolve

    resolved = resolve(args.preset, revision=args.revision)
    model, metadata = resolved.load(), resolved.metadata
    return {"preset": args.preset, **evaluate(model, metadata=metadata, **_options(args))}


def _simulate(args):
    from odezoo.data.pde import simulate, write_trajectories

    if args.n < 1 or args.steps < 0:
        raise OdezooError(f"--n must be >= 1 and --steps >= 0. Received: --n {args.n} --steps {args.steps}")
    trajectories = simulate(
        args.equation, batch=args.n, steps=args.steps, seed=args.seed, noise=args.noise, progress=True
    )
    path = write_trajectories(trajectories, args.out, f"{trajectories.equation}_seed{args.seed}.npz")
    return {
        "path": str(path),
        "shape": list(trajectories.u.shape),
        "dt": trajectories.dt,
        "h": trajectories.h,
        "noise": trajectories.noise,
    }


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
    config = dataclasses.replace(config, **_typed(config, changes, args.recipe))
    return train(config, args.workdir)


def _typed(config, changes, recipe):
    fields = {f.name: f for f in dataclasses.fields(config)}
    typed = {}
    for key, value in changes.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OdezooError(
                f"Unknown setting {key!r} for recipe {recipe!r}.{hint} Settings: {', '.join(fields)}."
            )
        kind = type(getattr(config, key))
        if not isinstance(value, str) or kind is str:  # from a JSON --config: its type must fit as it is
            fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            if not (fits or (kind is float and isinstance(value, int) and not isinstance(value, bool))):
                raise OdezooError(
                    f"Setting {key!r} takes a {kind.__name__}. Received: {value!r} ({type(value).__name__})"
                )
            typed[key] = float(value) if kind is float else value
            continue
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                typed[key] = value.lower() in ("true", "1")
            else:
                typed[key] = kind(value)
        except ValueError:
            raise OdezooError(f"Setting {key!r} takes a {kind.__name__}. Received: {value!r}") from None
    return typed


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


def _push(args):
    from odezoo.hub import push_folder
    from odezoo.zoo import resolve

    resolved = resolve(args.preset, revision=args.revision)
    resolved.verify()  # a damaged or incomplete folder is reported, not published
    return {"commit_url": push_folder(resolved.folder, args.repo_id, private=args.private)}


def _convert(args):
    from odezoo.models.macaron.macaron_convert import convert_fairseq

    return convert_fairseq(args.checkpoint, args.dictionary, args.out, bpe_codes=args.bpe_codes)


COMMANDS = {
    "list": _list,
    "info": _info,
    "predict": _predict,
    "eval": _eval,
    "train": _train,
    "simulate": _simulate,
    "export": _export,
    "push": _push,
    "convert": _convert,
}

if __name__ == "__main__":
    sys.exit(main())
