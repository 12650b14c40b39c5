"""`odezoo list | info | predict | eval | simulate | train | export | push` (parses and dispatches only)."""

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

    p = preset_parser("predict", "classify image files, or bundled sample images")
    p.add_argument("images", nargs="*", help="PNG/JPEG/BMP/GIF files (default: bundled samples)")
    p.add_argument("--sample", type=int, default=5, help="how many bundled samples when no file is given")
    p.add_argument("--top-k", type=int, default=3)

    p = preset_parser(
        "eval", "top-1 accuracy and loss on a data split (PDE presets: fresh trajectories), as JSON"
    )
    p.add_argument("--dataset", help="data set (default: the preset's)")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=0, help="first N examples only (0: all)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--data-dir", help="TensorFlow Datasets data folder")
    p.add_argument("--attack", choices=["pgd"], help="also report accuracy under an L-inf PGD attack")
    p.add_argument(
        "--eps", type=float, help="attack radius (default: 8/255 for CIFAR, 0.1 for Fashion-MNIST)"
    )
    p.add_argument(
        "--step", type=float, help="attack step (default: 2/255 for CIFAR, 0.01 for Fashion-MNIST)"
    )
    p.add_argument("--steps", type=int, help="attack steps (default: 20 for CIFAR, 40 for Fashion-MNIST)")
    p.add_argument(
        "--trajectories", type=int, default=100, help="PDE presets: fresh trajectories to simulate"
    )
    p.add_argument("--seed", type=int, default=10_000, help="PDE presets: seed of the fresh trajectories")

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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
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
    from odezoo.presets import list_presets, preset_table

    names = list_presets(args.pattern)
    if not names:
        raise OdezooError(f"No preset matches {args.pattern!r}; `odezoo list` shows them all.")
    print(preset_table(names) if args.markdown else "\n".join(names))
    return None


def _info(args):
    from odezoo.pretrained import METADATA_FILE, read_json, resolve

    folder, _ = resolve(args.preset, revision=args.revision)
    return {"folder": str(folder), **read_json(folder / METADATA_FILE)}


def _predict(args):
    import numpy as np

    model, metadata = _load(args)
    if metadata.get("equation"):
        raise OdezooError(
            f"{args.preset} is a PDE model, not an image classifier: `odezoo eval {args.preset}` scores it "
            "on fresh trajectories, and `odezoo.load(name).rollout(u0, steps)` predicts from a field."
        )
    class_names = metadata.get("class_names")
    if args.images:
        images, labels = (
            _read_images(args.images, tuple(model.inputs[0].shape[1:])),
            [None] * len(args.images),
        )
        names = args.images
    else:
        from odezoo.data.images import SAMPLE_FILE

        with np.load(SAMPLE_FILE) as f:
            images = f["images"][: args.sample].astype("float32") / 255.0
            labels = [int(v) for v in f["labels"][: args.sample]]
        names = [f"sample[{i}]" for i in range(len(labels))]
    logits = model.predict(images, verbose=0)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    results = []
    for name, label, p in zip(names, labels, probs):
        top = np.argsort(-p)[: args.top_k]
        entry = {
            "input": name,
            "top": [{"class": _class(class_names, i), "probability": round(float(p[i]), 4)} for i in top],
        }
        if label is not None:
            entry["label"] = _class(class_names, label)
        results.append(entry)
    return results


def _load(args):
    """The model of `args.preset` and its metadata, resolved once."""
    from odezoo.pretrained import METADATA_FILE, load_folder, read_json, resolve

    folder, preset = resolve(args.preset, revision=args.revision)
    model = load_folder(folder, preset=None if args.revision else preset)
    return model, read_json(folder / METADATA_FILE)


def _class(class_names, index):
    return class_names[index] if class_names else int(index)


def _read_images(paths, shape):
    import numpy as np
    import tensorflow as tf

    images = []
    for path in paths:
        try:
            data = tf.io.read_file(path)
            image = tf.io.decode_image(data, channels=shape[-1], expand_animations=False)
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
            raise OdezooError(
                f"Cannot read image {path!r} ({str(error).splitlines()[0]}); "
                "give PNG, JPEG, BMP or GIF files."
            ) from None
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, shape[:2])
        images.append(image.numpy())
    return np.stack(images)


def _eval(args):
    from odezoo.eval import evaluate, evaluate_robust

    model, metadata = _load(args)
    if metadata.get("equation"):
        from odezoo.pde_eval import evaluate_pde, public

        if args.trajectories < 1:
            raise OdezooError(f"--trajectories must be >= 1. Received: {args.trajectories}")
        result = evaluate_pde(model, metadata["equation"], trajectories=args.trajectories, seed=args.seed)
        return {"preset": args.preset, **public(result)}
    dataset = args.dataset or metadata.get("dataset")
    if not dataset:
        raise OdezooError(f"{args.preset} does not record its data set; pass --dataset.")
    if args.attack is None and (args.eps, args.step, args.steps) != (None, None, None):
        raise OdezooError("--eps, --step and --steps set an attack; add --attack pgd.")
    common = dict(split=args.split, limit=args.limit, batch_size=args.batch_size, data_dir=args.data_dir)
    if args.attack:
        result = evaluate_robust(model, dataset, eps=args.eps, step=args.step, steps=args.steps, **common)
    else:
        result = evaluate(model, dataset, **common)
    return {"preset": args.preset, **result}


def _simulate(args):
    from pathlib import Path

    from odezoo.data.pde import simulate

    if args.n < 1 or args.steps < 0:
        raise OdezooError(f"--n must be >= 1 and --steps >= 0. Received: --n {args.n} --steps {args.steps}")
    trajectories = simulate(args.equation, batch=args.n, steps=args.steps, seed=args.seed, noise=args.noise)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{trajectories.equation}_seed{args.seed}.npz"
    trajectories.save(path)
    return {
        "path": str(path),
        "shape": list(trajectories.u.shape),
        "dt": trajectories.dt,
        "h": trajectories.h,
        "noise": trajectories.noise,
    }


def _train(args):
    from odezoo.recipes import RECIPES

    if args.recipe not in RECIPES:
        close = difflib.get_close_matches(args.recipe, RECIPES, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise OdezooError(f"Unknown recipe {args.recipe!r}.{hint} Recipes: {', '.join(sorted(RECIPES))}.")
    train, config = RECIPES[args.recipe]
    changes = {}
    if args.config:
        try:
            with open(args.config) as f:
                changes.update(json.load(f))
        except (OSError, json.JSONDecodeError) as error:
            raise OdezooError(f"Cannot read --config {args.config!r}: {error}.") from None
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
        if not isinstance(value, str) or kind is str:
            typed[key] = value
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
    from odezoo.pretrained import resolve

    folder, _ = resolve(args.preset, revision=args.revision)
    return {"commit_url": push_folder(folder, args.repo_id, private=args.private)}


COMMANDS = {
    "list": _list,
    "info": _info,
    "predict": _predict,
    "eval": _eval,
    "train": _train,
    "simulate": _simulate,
    "export": _export,
    "push": _push,
}

if __name__ == "__main__":
    sys.exit(main())
