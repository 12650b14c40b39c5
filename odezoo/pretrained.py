"""Preset folders: `from_pretrained`, `save_pretrained`, `push_to_hub`.

A preset folder holds `config.json` (the serialised model), `model.weights.h5`,
`metadata.json` (versions, parameter count, weights sha256, recipe, metrics) and
`README.md` (the model card, with Hub `model-index` metadata). Loading resolves, in
order: an existing local folder, the copy bundled with odezoo, the Hugging Face Hub
(through its cache; `HF_HUB_OFFLINE`, `HF_ENDPOINT`, `HF_HUB_CACHE` are honoured).
"""

import datetime
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np

from odezoo._version import __version__
from odezoo.errors import OdezooError
from odezoo.hub import hub_snapshot, push_folder
from odezoo.presets import get_preset

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
HEAD_LAYER = "head"
PACKAGE_DIR = Path(__file__).resolve().parent
# Bundled presets: inside an installed wheel, else the clone's top-level weights/.
BUNDLED_ROOTS = (PACKAGE_DIR / "_bundled", PACKAGE_DIR.parent / "weights")


class PretrainedMixin:
    """Loading, saving and publishing for odezoo models (mixed into `keras.Model`)."""

    presets = {}
    INPUT_RANGE = None  # (low, high) of valid input values, checked by `check_inputs`
    HUB_TASK = "image-classification"  # task type of the card's `model-index` results

    @classmethod
    def from_pretrained(cls, name_or_path, *, revision=None, load_weights=True, **overrides):
        """Builds the model of a preset and loads its weights.

        Args:
            name_or_path: a preset name (`odezoo.list_presets()`), a local preset
                folder, or `"hf://<org>/<repo>"`.
            revision: a Hub branch, tag or commit; skips the bundled copy.
            load_weights: `False` builds the architecture only.
            **overrides: config changes, e.g. `num_classes=K` for fine-tuning (the
                trunk is loaded, the head is new) or `dtype="float64"`.
        """
        return load_pretrained(
            name_or_path,
            expected_cls=cls,
            revision=revision,
            load_weights=load_weights,
            **overrides,
        )

    def save_pretrained(self, directory, *, metadata=None) -> Path:
        """Writes this model as a preset folder, atomically.

        The folder is assembled beside `directory` and moved into place only when
        complete; an existing preset folder is replaced, anything else is refused.

        Args:
            directory: the preset folder to write.
            metadata: extra `metadata.json` entries (`preset`, `description`,
                `recipe`, `recipe_config`, `metrics`, `class_names`, ...).
        """
        directory = Path(directory).expanduser().absolute()
        if directory.exists() and (
            not directory.is_dir() or (any(directory.iterdir()) and not (directory / CONFIG_FILE).is_file())
        ):
            raise OdezooError(
                f"{directory} exists and is not an odezoo preset folder; save_pretrained only "
                "replaces preset folders. Choose a new or empty directory."
            )
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent)
        )
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a preset folder is an ordinary one
        try:
            config = keras.saving.serialize_keras_object(self)
            config.pop("compile_config", None)
            _write_json(staging / CONFIG_FILE, config)
            self.save_weights(staging / WEIGHTS_FILE)
            meta = {
                **(metadata or {}),
                "class_name": type(self).__name__,
                "odezoo_version": __version__,
                "keras_version": keras.__version__,
                "backend": keras.config.backend(),
                "parameter_count": int(self.count_params()),
                "trainable_parameter_count": int(sum(np.prod(v.shape) for v in self.trainable_weights)),
                "weights_sha256": sha256_of(staging / WEIGHTS_FILE),
                "date_saved": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            }
            _write_json(staging / METADATA_FILE, meta)
            (staging / CARD_FILE).write_text(model_card(type(self), meta))
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
                directory.rename(old)
                staging.rename(directory)
                shutil.rmtree(old)
            else:
                staging.rename(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return directory

    def push_to_hub(self, repo_id, *, private=False, metadata=None) -> str:
        """Saves this model as a preset folder and uploads it to the Hub repo `repo_id`.

        Returns the URL of the commit.
        """
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "preset", metadata=metadata)
            return push_folder(folder, repo_id, private=private)

    @classmethod
    def from_config(cls, config):
        """Builds the model from `get_config()`'s keyword arguments (the dtype policy deserialised)."""
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)

    def freeze_trunk(self):
        """Freezes every layer except the classifier head `"head"`; compile afterwards.

        Frozen batch-norm layers then use their moving statistics, as fine-tuning wants.
        """
        if HEAD_LAYER not in {layer.name for layer in self.layers}:
            raise OdezooError(f"{self.name} has no classifier head to keep trainable (num_classes=None).")
        for layer in self.layers:
            layer.trainable = layer.name == HEAD_LAYER
        return self

    def check_inputs(self, x):
        """Returns `x` as an array if it fits the model's input, else raises saying what fits."""
        expected = tuple(self.inputs[0].shape[1:])
        want = f"(batch, {', '.join(str(d) for d in expected)})"
        arr = np.asarray(x)
        if arr.dtype.kind != "f":
            fix = " Convert with `x.astype('float32') / 255`." if arr.dtype == np.uint8 else ""
            raise OdezooError(
                f"{self.name} expects float inputs of shape {want} with values in [0, 1]; "
                f"received dtype {arr.dtype}.{fix}"
            )
        if arr.ndim == len(expected) + 1 and tuple(arr.shape[1:]) == expected:
            if self.INPUT_RANGE and arr.size:
                head = arr[:64]  # the range of the first inputs: catches 0..255 images at O(1) cost
                (low, high), (lo, hi) = self.INPUT_RANGE, (float(head.min()), float(head.max()))
                if lo < low - 1e-3 or hi > high + 1e-3:
                    fix = " Divide 8-bit images by 255." if hi > 2 * high else ""
                    raise OdezooError(
                        f"{self.name} expects values in [{low:g}, {high:g}]; received values in "
                        f"[{lo:g}, {hi:g}].{fix}"
                    )
            return arr
        if tuple(arr.shape) == expected:
            fix = " Add a batch axis: x[None]."
        elif arr.ndim == len(expected) and tuple(arr.shape[1:]) == expected[:-1] and expected[-1] == 1:
            fix = " Add a channel axis: x[..., None]."
        elif arr.ndim == len(expected) + 1 and tuple(arr.shape[1:-1]) == expected[:-1]:
            fix = f" The images have {arr.shape[-1]} channels; the model takes {expected[-1]}."
        else:
            fix = " Resize the inputs or load a preset made for this shape."
        raise OdezooError(f"{self.name} expects inputs of shape {want}; received {tuple(arr.shape)}.{fix}")

    def predict(self, x, *args, **kwargs):
        if isinstance(x, np.ndarray | list):
            x = self.check_inputs(x)
        return super().predict(x, *args, **kwargs)


def load_pretrained(name_or_path, *, expected_cls, revision=None, load_weights=True, **overrides):
    """Resolves `name_or_path` to a preset folder and builds the model it describes."""
    folder, preset = resolve(name_or_path, revision=revision)
    return load_folder(
        folder,
        preset=preset if revision is None else None,
        expected_cls=expected_cls,
        load_weights=load_weights,
        **overrides,
    )


def load_folder(folder, *, preset=None, expected_cls=None, load_weights=True, **overrides):
    """Builds the model a preset folder describes and loads its verified weights.

    `preset`, the registered preset the folder was resolved from, adds the check that
    the folder is the one this release of odezoo names.
    """
    import odezoo.models  # noqa: F401  (registers the model classes with Keras)

    needed = [CONFIG_FILE, METADATA_FILE] + ([WEIGHTS_FILE] if load_weights else [])
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise OdezooError(
            f"Preset folder {folder} is missing {', '.join(missing)}: it is incomplete. Delete it and "
            "download it again, or write it anew with `save_pretrained`."
        )
    config = read_json(folder / CONFIG_FILE)
    cls = keras.saving.get_registered_object(config.get("registered_name") or "")
    if not (isinstance(cls, type) and issubclass(cls, PretrainedMixin)):
        raise OdezooError(
            f"{folder / CONFIG_FILE} describes {config.get('class_name')!r}, which is not an odezoo "
            "model; it is no preset folder."
        )
    if expected_cls is not None and not issubclass(cls, expected_cls):
        raise OdezooError(
            f"Preset {preset.name if preset else os.fspath(folder)!r} is a `{cls.__name__}`; call "
            f"`{cls.__name__}.from_pretrained` or `odezoo.load`."
        )
    base = config["config"]
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise OdezooError(
            f"Unknown config override(s) {unknown} for {cls.__name__}; it takes {sorted(base)}."
        )
    model = cls.from_config({**base, **overrides})
    if not load_weights:
        return model
    weights = folder / WEIGHTS_FILE
    metadata = read_json(folder / METADATA_FILE)
    _verify_sha256(weights, metadata.get("weights_sha256"), preset)
    if overrides.get("num_classes", base.get("num_classes")) != base.get("num_classes"):
        source = cls.from_config(base)
        _load_weights(source, weights, base)
        for layer in model.layers:
            if layer.name != HEAD_LAYER and layer.weights:
                layer.set_weights(source.get_layer(layer.name).get_weights())
    else:
        _load_weights(model, weights, overrides)
    return model


def resolve(name_or_path, *, revision=None):
    """Returns `(folder, preset)`: local folder, bundled copy or Hub snapshot, in that order.

    `preset` is the registered `Preset` when a name was given, else `None`.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path, None
    if text.startswith("hf://"):
        return hub_snapshot(text[len("hf://") :], revision), None
    if os.sep in text or text.startswith("."):
        raise OdezooError(f"No preset folder at {text!r}: the path does not exist or is not a folder.")
    preset = get_preset(text)
    bundled = bundled_folder(text) if revision is None else None
    return (bundled or hub_snapshot(preset.hf_repo, revision)), preset


def bundled_folder(name):
    """The preset folder `name` shipped with odezoo, or `None`."""
    return next((root / name for root in BUNDLED_ROOTS if (root / name / CONFIG_FILE).is_file()), None)


def model_card(cls, metadata) -> str:
    """The preset's README.md: Hub metadata (with `model-index` results) and a short card."""
    from huggingface_hub import EvalResult, ModelCardData

    name = metadata.get("preset", cls.__name__)
    metrics = metadata.get("metrics", [])
    results = [
        EvalResult(
            task_type=cls.HUB_TASK,
            dataset_type=m["dataset"],
            dataset_name=m["dataset"],
            dataset_split=m["split"],
            metric_type=m["metric"],
            metric_value=m["value"],
        )
        for m in metrics
    ]
    data = ModelCardData(
        library_name="keras",
        license=metadata.get("license", "apache-2.0"),
        tags=["odezoo", cls.__name__],
        model_name=name,
        eval_results=results or None,
    )
    doc = inspect.getdoc(cls) or ""
    equation = doc.split("\n\nArgs:")[0]
    rows = "\n".join(
        f"| {m['dataset']} | {m['split']} | {m['metric']} | {m['value']:.4f} | `{m.get('command', '')}` |"
        for m in metrics
    )
    sections = [
        f"# {name}\n\n{metadata.get('description', '')}",
        f"## Model\n\n{equation}",
        f"## Usage\n\n```python\nimport odezoo\nmodel = odezoo.load({name!r})\n```",
    ]
    if rows:
        sections.append(
            f"## Results\n\n| data | split | metric | value | command |\n|---|---|---|---|---|\n{rows}"
        )
    sections += [f"## {title}\n\n{text}" for title, text in metadata.get("card_sections", {}).items()]
    if metadata.get("train_command"):
        sections.append(f"## Training\n\n```\n{metadata['train_command']}\n```")
    if getattr(cls, "CITATION", ""):
        sections.append(f"## Citation\n\n```bibtex\n{cls.CITATION}\n```")
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OdezooError(
            f"{path} is not valid JSON ({error}); the preset folder is damaged: download it again."
        ) from None


def _write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _verify_sha256(weights, expected, preset):
    if preset is not None and expected != preset.sha256:
        raise OdezooError(
            f"{weights.parent / METADATA_FILE} records weights sha256 {expected} but preset "
            f"{preset.name!r} of odezoo {__version__} is {preset.sha256}: the folder is from another "
            "release. Pass `revision=` for it, or delete it and download again."
        )
    actual = sha256_of(weights)
    if actual != expected:
        raise OdezooError(
            f"Weights file {weights} is corrupt or truncated: its sha256 is {actual[:16]}..., expected "
            f"{(expected or 'none recorded')[:16]}.... Delete the preset folder and download it again, "
            "or write it anew with `save_pretrained`."
        )


def _load_weights(model, weights, overrides):
    # Keras only warns when parts of a file do not match the model (those layers keep
    # fresh weights); a preset must load completely or not at all.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(weights)
            problem = next((str(w.message) for w in caught if issubclass(w.category, UserWarning)), None)
        except ValueError as error:
            problem = str(error)
    if problem:
        changes = f" with overrides {overrides!r}" if overrides else ""
        raise OdezooError(
            f"The weights in {weights} do not fit {type(model).__name__}{changes} "
            f"({problem.splitlines()[0][:200]}). Drop overrides that change layers; only num_classes, "
            "dtype and training options can change."
        )
