"""The `Task` interface every task implements, and the command-line options tasks declare."""

import functools
from dataclasses import dataclass

import numpy as np

from odezoo.errors import OdezooError


def flag(name):
    """The command-line flag of the option keyword `name`: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Option:
    """A command-line option of a task's `predict` or `evaluate` hook (`--name`, keyword `name`).

    Options of other tasks are refused by the CLI with one line, never silently ignored.
    """

    name: str
    help: str
    type: type = str
    choices: tuple | None = None
    minimum: float | None = None  # smallest accepted value of a number

    @property
    def flag(self):
        return flag(self.name)

    def check(self, value):
        if self.minimum is not None and value < self.minimum:
            raise OdezooError(f"{self.flag} must be >= {self.minimum:g}. Received: {self.flag} {value}")
        if self.type is int and value > INT64_MAX:  # more than TensorFlow's int64 counts take
            raise OdezooError(f"{self.flag} must be <= {INT64_MAX}. Received: {self.flag} {value}")
        return value


def data_options(dataset, split, data_dir="TensorFlow Datasets data folder"):
    """The options of an evaluation on a data set, with these help texts: `--dataset`, `--split`,
    `--limit`, `--batch-size`, `--data-dir`."""
    return (
        Option("dataset", dataset),
        Option("split", split),
        Option("limit", "first N examples only (0: all)", int, minimum=0),
        Option("batch_size", "evaluation batch size", int, minimum=1),
        Option("data_dir", data_dir),
    )


class Task:
    """What a task owns. Subclasses set the class attributes and override the hooks that apply.

    A model class names the task it does with `TASK_CLASS` (`odezoo.pretrained.PretrainedMixin`): a
    task of this package, or the family's subclass of one where the family adds behaviour (its
    evaluation data, sample inputs, export parts), kept in the family's folder.
    """

    name = ""
    pipeline_tag = ""  # the Hugging Face Hub pipeline tag; also the card's model-index task type
    description = ""  # one line for `odezoo list` and the docs
    predict_options: tuple[Option, ...] = ()
    eval_options: tuple[Option, ...] = ()
    head_layer = None  # the layer a fine-tuning head replaces, where the task has one
    writes_files = False  # whether `predict` writes files; it then takes `overwrite` (`--overwrite`)
    # export format ("onnx") or format+quantisation ("tflite+int8") -> why this task's models cannot take
    # it: `odezoo export` refuses it with that reason before converting anything
    unexportable: dict[str, str] = {}

    @classmethod
    @functools.cache
    def instance(cls):
        """The one instance of this task class (tasks hold no state)."""
        return cls()

    # --- inputs ---
    def check_inputs(self, model, x):
        """Returns `x` as an array if it fits `model`, else raises `OdezooError` saying what fits."""
        return np.asarray(x)

    # --- predict / evaluate (the CLI's `predict` and `eval`) ---
    def predict(self, model, metadata, inputs, **options):
        """What `odezoo predict` prints (JSON-able) for input files `inputs` (may be empty)."""
        raise OdezooError(f"{model.name} is a {self.name} model; `odezoo predict` has nothing for it.")

    def evaluate(self, model, metadata, **options):
        """What `odezoo eval` prints (a JSON-able dict with the task's metrics)."""
        raise OdezooError(f"{model.name} is a {self.name} model; odezoo has no evaluation for it yet.")

    def headline(self, metadata) -> str:
        """The preset's headline result for the README table, from `metadata["metrics"]`."""
        return "—"

    # --- fine-tuning ---
    def changes_head(self, config, overrides) -> bool:
        """Whether `overrides` of a preset's `config` replace the task head (the trunk is then loaded): a
        task with a `head_layer` replaces it when `num_classes` changes."""
        old = config.get("num_classes")
        return self.head_layer is not None and overrides.get("num_classes", old) != old

    # --- export ---
    def export_pair(self, model, metadata, quantize=None):
        """`(model to export, model whose outputs the artifact must reproduce, sample inputs)`."""
        return model, model, self.sample_inputs(model, metadata)

    def export_parts(self, model, metadata, quantize=None):
        """`{part name: export_pair}`: the artifacts an export writes, each checked on its own. One part
        (the default, `{"model": export_pair(...)}`) is written in the format's folder itself."""
        return {"model": self.export_pair(model, metadata, quantize)}

    def sample_inputs(self, model, metadata, count=32):
        """Inputs that exercise the model in the export check."""
        shape = (count, *model.inputs[0].shape[1:])
        return np.random.default_rng(0).uniform(0, 1, shape).astype("float32")

    def agreement(self, expected, actual, fmt):
        """`(report fields, problem or None)`: how close an artifact's outputs are to Keras' for the
        export format key `fmt` (`"onnx"`, `"dynamic"`, ...); a problem fails the export."""
        diff = float(np.max(np.abs(actual - expected)))
        tolerance = 1e-4
        problem = None if diff <= tolerance else f"differs from Keras by {diff:.3g} (tolerance {tolerance:g})"
        return {"max_abs_diff": diff, "tolerance": tolerance}, problem

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """`(report fields, problem or None)` of output number `output` of the export part `part`
        quantised as `quantize` (`"dynamic"`, `"float16"`, `"int8"`): the task's measure with its
        tolerance for that quantisation (default: `agreement` with the format key `quantize`). The
        fields name the measure (`"measure"`) and hold its value and tolerance."""
        return self.agreement(expected, actual, quantize)

    # --- preset tests (`odezoo.testing.check_preset`) ---
    def golden(self, model, stored):
        """`(actual, expected)` outputs for the stored golden arrays of a preset."""
        raise NotImplementedError(f"{self.name} has no golden check")

    def card_quotes(self, metadata) -> list[str]:
        """Strings the preset's MODEL_CARDS.md section must contain (its numbers, its command)."""
        return [metadata["train_command"]] if metadata.get("train_command") else []

    slow_spot_checks = False  # the spot checks take minutes on a CPU: the preset tests mark them slow

    def spot_checks(self, model, metadata) -> list[tuple[str, bool]]:
        """Quick checks that the weights do what the card says: `(description, passed)` pairs."""
        return []

    # --- cards ---
    def eval_results(self, metadata) -> list[dict]:
        """The card's `model-index` entries (keyword arguments of `huggingface_hub.EvalResult`)."""
        return [
            {
                "task_type": self.pipeline_tag,
                "dataset_type": m["dataset"],
                "dataset_name": m["dataset"],
                "dataset_split": m["split"],
                "metric_type": m["metric"],
                "metric_value": m["value"],
            }
            for m in metadata.get("metrics", [])
        ]


def share_agreeing(expected, actual, minimum, what):
    """A quantised export's share of equal values (tokens, step counts) or, for logits, of equal arg-max
    over the last axis: `(fields, problem or None)`, failing below `minimum`."""
    if np.issubdtype(np.asarray(expected).dtype, np.floating):
        expected, actual = expected.argmax(-1), actual.argmax(-1)
    share = float(np.mean(np.asarray(actual) == np.asarray(expected)))
    fields = {"measure": what, what: share, "tolerance": minimum}
    return fields, None if share >= minimum else f"has {what} {share:.1%} with Keras (needed: {minimum:.0%})"


def relative_error(expected, actual, tolerance, what="max_rel_diff"):
    """max |difference| relative to the largest |value| of `expected`: `(fields, problem or None)`."""
    diff = float(np.max(np.abs(actual - expected)))
    relative = diff / max(float(np.max(np.abs(expected))), np.finfo("float32").tiny)
    fields = {"measure": what, what: relative, "max_abs_diff": diff, "tolerance": tolerance}
    if relative <= tolerance:
        return fields, None
    return fields, f"has a relative error of {relative:.3g} (tolerance {tolerance:g})"


def metric(metadata, name, split=None):
    """The first `metadata["metrics"]` record named `name` (on `split`, if given), or `None`."""
    return next(
        (
            m
            for m in metadata.get("metrics", [])
            if m["metric"] == name and (split is None or m["split"] == split)
        ),
        None,
    )


def limit_note(limit, count):
    """`{"note": ...}` saying that `limit` (`--limit`) asked for more than the `count` examples the split
    holds and all of them were used; `{}` where the limit was met or is 0 (all)."""
    if not limit or limit <= count:
        return {}
    return {"note": f"--limit {limit} is more than the {count:,} examples of the split: all were used"}
