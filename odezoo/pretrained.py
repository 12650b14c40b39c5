"""The model mixin (`from_pretrained`, `save_pretrained`, `push_to_hub`) and building a model from a
preset folder (`load_folder`).

The folder's format and its verification: `odezoo.preset_folder`. Where a name or a Hub repository
is resolved to a folder: `odezoo.presets.resolve`. Every file that `metadata.json` lists is verified
before the model is built.
"""

import datetime
import importlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
from keras.src.saving import saving_lib  # `objects_to_skip` is not in the public API

from odezoo._files import inside, sizes
from odezoo._version import __version__
from odezoo.cards import model_card
from odezoo.errors import OdezooError, check_dtype, check_integer
from odezoo.hub import push_folder
from odezoo.preset_folder import (
    CARD_FILE,
    CONFIG_FILE,
    FORMAT_FILES,
    METADATA_FILE,
    WEIGHTS_FILE,
    asset_files,
    preset_files,
    read_json,
    read_metadata,
    sha256_of,
    verify_folder,
    write_json,
    write_metadata,
)
from odezoo.presets import resolve


class _TaskName:
    """`Model.TASK`: the name of the model's task (what `metadata.json` records), read off its task class."""

    def __get__(self, model, cls):
        config = getattr(model, "_odezoo_config", None)
        task = cls.TASK_CLASS if config is None else cls.task_of(config)
        return None if task is None else task.name


class PretrainedMixin:
    """Loading, saving and publishing for odezoo models (mixed into `keras.Model`).

    A model class sets `TASK_CLASS` (an `odezoo.tasks.Task` subclass: the family's own where it adds
    behaviour) and ends its constructor with `self.set_config(**keyword arguments)`: those are its
    config (`get_config`) and its attributes.
    """

    TASK_CLASS = None
    TASK = _TaskName()
    CITATION = ""
    # The preset folder `odezoo.load` built the model from (`None` for a model built in code): where
    # task hooks and model methods find the preset's assets, e.g. a translation preset's tokenizer, and
    # what `save_pretrained` carries into a folder the model is saved to.
    preset_folder = None
    # Config keys added after configs were saved without them, with the value such a config meant
    # (e.g. `{"padding": "same"}`): an old config builds the architecture it was saved with.
    LEGACY_CONFIG = {}
    # The config keys an override may change on loaded weights: those that leave what the weights
    # compute as it was (the dtype, training-time noise such as dropout, inference settings). Any other
    # key the weights were trained with is refused by `load_folder`; `num_classes` where the task puts
    # a new head on (`Task.changes_head`). A family adds its own: `PretrainedMixin.SAFE_OVERRIDES | {...}`.
    SAFE_OVERRIDES = frozenset({"name", "trainable", "dtype"})
    # `(key, trained value, new value)`: single changes that also keep what the weights compute (e.g.
    # LM-ResNet's `("scheme", "euler", "lm")`: an Euler ResNet's weights warm-start the LM scheme).
    SAFE_CHANGES = ()
    # `{key: what a changed value changes}`, said where such an override is refused (optional).
    OVERRIDE_NOTES = {}

    @classmethod
    def task_of(cls, config):
        """The task class of the model `config` builds (a class whose task depends on its head overrides
        this): read without building the model."""
        return cls.TASK_CLASS

    @property
    def task(self):
        """The model's task (`odezoo.tasks.Task`): input checks, evaluation, export checks, card."""
        return self.task_of(self._odezoo_config).instance()

    def set_config(self, *, dtype=None, **config):
        """Records the constructor's keyword arguments (JSON-ready values) as config and attributes."""
        self._odezoo_dtype = self.dtype_policy if dtype is None else keras.dtype_policies.get(dtype)
        self._odezoo_config = config
        for key, value in config.items():
            setattr(self, key, value)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self._odezoo_dtype),
            **self._odezoo_config,
        }

    @classmethod
    def complete_config(cls, config):
        """`config` with the `LEGACY_CONFIG` value of each key it lacks (a config saved before the key)."""
        return {**cls.LEGACY_CONFIG, **config}

    @classmethod
    def from_config(cls, config):
        """Builds the model from `get_config()`'s keyword arguments (the dtype policy deserialised; a
        key the config predates takes its `LEGACY_CONFIG` value)."""
        config = cls.complete_config(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)

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
        resolved = resolve(name_or_path, revision=revision)
        return load_preset(resolved, expected_cls=cls, load_weights=load_weights, **overrides)

    def save_pretrained(self, directory, *, metadata=None, assets=None) -> Path:
        """Writes this model as a preset folder, atomically, never touching a file odezoo did not write.

        The folder is assembled beside `directory` and moved into place only when complete. An
        existing odezoo preset folder is updated: the files its `metadata.json` lists are replaced,
        and any other file in it (a training log, notes) is kept, carried over by hard link (or a
        copy) before the swap. A listed file whose content is no longer the one whose sha256
        `metadata.json` records (a model card the user edited) is the user's now: saving is refused,
        naming it, until it is moved away. Any other non-empty folder is refused.

        A model loaded from a preset folder (`preset_folder`) keeps what that folder carried, so the
        saved folder predicts and evaluates as the preset did:

        - its assets (the files its `metadata.json` lists besides config, weights, metadata and card:
          a tokenizer's vocabulary and BPE codes, a plot), verified and copied; an entry of `assets`
          of the same name wins;
        - the `metadata.json` entries that describe its data and labels, `INHERITED_METADATA`:
          `dataset`, `class_names` (what `odezoo eval` and `odezoo predict` read), `equation` (a PDE
          preset's, which its evaluation simulates), `direction` (a translation's), `degradation` (a
          restorer's default evaluation) and `license`
          (the terms of the weights and assets it derives from). With a new head (`num_classes`
          differs from the folder's config) the labels are the caller's: `dataset` and `class_names`
          are not inherited (pass them in `metadata`);
        - `base`: the preset it came from (the folder's `preset` entry, else the folder's path).

        The source's `preset` is not inherited (the saved folder is not the published preset: pass
        `metadata={"preset": ...}` to name it), nor its measurements and training record (`metrics`,
        `examples`, `pde_report`, `history`, `recipe`, `train_command`, ...: they are not this model's).
        An entry of `metadata` always wins.

        Args:
            directory: the preset folder to write.
            metadata: extra `metadata.json` entries (`preset`, `description`,
                `recipe`, `recipe_config`, `metrics`, `class_names`, ...).
            assets: `{relative name: source file}` copied into the folder (a tokenizer's
                vocabulary, a plot); covered by the folder's sha256 list like every file. A name
                is a relative path inside the folder (no `..`, no absolute path, no link leading
                out of it), neither a file of the format nor a user's file kept in the folder.
        """
        _check_save_arguments(directory, metadata, assets)
        directory = Path(directory).expanduser().absolute()
        metadata, assets = _carried_from_preset(self, metadata, assets)
        keep = _files_to_keep(directory)
        _check_asset_names(directory, assets, keep)
        staging = _staging_folder(directory)
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        try:
            self._write_preset(staging, metadata, assets)
            for relative in keep:  # the user's files, carried into the new folder before the swap
                _carry(directory / relative, staging / relative)
            if directory.exists():
                directory.rename(old)
                staging.rename(directory)
                shutil.rmtree(old)
            else:
                staging.rename(directory)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if old.exists() and not directory.exists():
                old.rename(directory)
            if isinstance(error, OSError):
                raise OdezooError(
                    f"Cannot write the preset folder {directory}: {error.strerror or error}"
                    f"{f' ({error.filename})' if error.filename else ''}; nothing was changed there. "
                    "Free some space or choose a writable folder."
                ) from None
            raise
        return directory

    def _write_preset(self, staging, metadata, assets):
        """Writes the preset folder's files into the empty folder `staging`: config, weights (without
        the optimizer's slots), `assets`, the model card and `metadata.json` (`metadata` and what odezoo
        records of every preset)."""
        check_free_space(staging, self, "the preset folder", factor=1)
        config = keras.saving.serialize_keras_object(self)
        config.pop("compile_config", None)
        write_json(staging / CONFIG_FILE, config)
        # The model's weights only: a training checkpoint keeps the optimizer's slots, a preset does not.
        optimizer = getattr(self, "optimizer", None)
        saving_lib.save_weights_only(
            self, staging / WEIGHTS_FILE, objects_to_skip=[optimizer] if optimizer else None
        )
        for name, source in assets.items():
            target = inside(staging, name, "Asset name")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        meta = {
            **metadata,
            "class_name": type(self).__name__,
            "task": self.TASK,
            "odezoo_version": __version__,
            "keras_version": keras.__version__,
            "backend": keras.config.backend(),
            "parameter_count": int(self.count_params()),
            "trainable_parameter_count": int(sum(np.prod(v.shape) for v in self.trainable_weights)),
            "weights_sha256": sha256_of(staging / WEIGHTS_FILE),
            "date_saved": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        (staging / CARD_FILE).write_text(model_card(type(self), self.task, meta))
        write_metadata(staging, meta)

    def push_to_hub(self, repo_id, *, private=False, metadata=None) -> str:
        """Saves this model as a preset folder and uploads it to the Hub repo `repo_id`.

        Returns the URL of the commit.
        """
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "preset", metadata=metadata)
            return push_folder(folder, repo_id, private=private)

    def freeze_trunk(self):
        """Freezes every layer except the task's head; compile afterwards.

        Frozen batch-norm layers then use their moving statistics, as fine-tuning wants.
        """
        head = self.task.head_layer
        if head not in {layer.name for layer in self.layers}:
            raise OdezooError(f"{self.name} has no task head to keep trainable (a {self.TASK} model).")
        for layer in self.layers:
            layer.trainable = layer.name == head
        return self

    def check_inputs(self, x):
        """Returns `x` as an array if it fits the model's input, else raises saying what fits."""
        return self.task.check_inputs(self, x)

    def predict(self, x, *args, **kwargs):
        if isinstance(x, str | os.PathLike):
            raise OdezooError(
                f"{self.name}.predict takes arrays, not a file name ({os.fspath(x)!r}): decode the file "
                f"first (README, Predict), or run `odezoo predict {self.name} FILE`."
            )
        if kwargs.get("batch_size") is not None:
            check_integer("batch_size", kwargs["batch_size"], 1)
        if isinstance(x, list) or _numpy_inputs(x):
            x = self.check_inputs(x)
        elif _is_dataset(x):  # its first batch: a whole pass would cost a second one
            first = next(iter(x.take(1)), None)
            if first is not None:
                self.check_inputs(keras.tree.map_structure(np.asarray, _model_inputs(first)))
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        if isinstance(x, list) or _numpy_inputs(x):  # checked as `predict` checks them
            x = self.check_inputs(x)
        return super().evaluate(x, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        # NumPy inputs are a user's data: checked as `predict` checks them (tensors, as in training,
        # tracing and export, pass straight through, so the check costs graphs nothing).
        if args and _numpy_inputs(args[0]):
            args = (self.check_inputs(args[0]), *args[1:])
        return super().__call__(*args, **kwargs)


def _is_dataset(x):
    """Whether `x` is a `tf.data.Dataset` (there is none before TensorFlow is imported)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.data.Dataset)


def _model_inputs(element):
    """The model inputs of a dataset element: itself, or the first of an `(x, y[, weights])` tuple."""
    return element[0] if isinstance(element, tuple) else element


def _numpy_inputs(x):
    """Whether `x` is NumPy data: an array, or a dict of arrays by input name (keras-hub's text inputs)."""
    if isinstance(x, dict):
        return bool(x) and all(isinstance(v, np.ndarray) for v in x.values())
    return isinstance(x, np.ndarray)


# The `metadata.json` entries of a preset folder that a model loaded from it keeps when saved
# (`save_pretrained`): what its data and labels are (read by the tasks' `predict` and `evaluate`, and
# by PDE-Net's export) and the terms of the files it derives from.
INHERITED_METADATA = ("dataset", "class_names", "equation", "direction", "degradation", "license")
# Of those, the entries that name the labels of the preset's head: not inherited by a model with a new head.
HEAD_METADATA = ("dataset", "class_names")


def _check_save_arguments(directory, metadata, assets):
    """Raises `OdezooError` before anything is written unless `directory` is a path, `metadata` a dict
    of JSON values and `assets` a dict (the arguments of `save_pretrained`)."""
    if not isinstance(directory, str | os.PathLike):
        raise OdezooError(
            f"save_pretrained takes a folder (str or Path). Received: {directory!r} "
            f"({type(directory).__name__})"
        )
    examples = {"metadata": "{'class_names': ['boot']}", "assets": "{'vocab.txt': 'path/vocab.txt'}"}
    for name, value in (("metadata", metadata), ("assets", assets)):
        if value is not None and not isinstance(value, dict):
            raise OdezooError(
                f"`{name}` must be a dict, e.g. {name}={examples[name]}. Received: {value!r:.100} "
                f"({type(value).__name__})"
            )
    for key, value in (metadata or {}).items():
        try:
            json.dumps({key: value})
        except (TypeError, ValueError) as error:
            raise OdezooError(
                f"metadata[{key!r}] cannot be written to metadata.json ({error}); give JSON values: str, "
                "int, float, bool, None, lists and dicts of them (e.g. float(x) for a NumPy number, "
                f"x.tolist() for an array). Received: {value!r:.100}"
            ) from None


def _carried_from_preset(model, metadata, assets):
    """`(metadata, assets)` for `save_pretrained`: the caller's, over what the preset folder `model` was
    loaded from carries (its assets, `INHERITED_METADATA`, `base`; see `save_pretrained`)."""
    metadata, assets = dict(metadata or {}), dict(assets or {})
    folder = model.preset_folder
    if folder is None:
        return metadata, assets
    try:
        source = read_metadata(folder)
        carried = asset_files(folder, source)
        config = read_json(folder / CONFIG_FILE).get("config", {})
    except (OdezooError, OSError) as error:
        raise OdezooError(
            f"{model.name} was loaded from {folder}, whose assets and data set save_pretrained carries "
            f"into the new folder, but it cannot read them now: {error} Load the preset again, or set "
            "`model.preset_folder = None` to save the model without them."
        ) from None
    inherited = {key: source[key] for key in INHERITED_METADATA if key in source}
    if config.get("num_classes") != model._odezoo_config.get("num_classes"):  # a new head: new labels
        inherited = {key: value for key, value in inherited.items() if key not in HEAD_METADATA}
    base = source.get("preset") or os.fspath(folder)
    return {**inherited, "base": base, **metadata}, {**carried, **assets}


def _staging_folder(directory):
    """A new folder beside `directory` (an ordinary one: `mkdtemp` makes it private) where the preset
    folder is assembled before the swap."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent)
        )
    except OSError as error:
        raise OdezooError(
            f"Cannot write the preset folder {directory}: {error.strerror or error} "
            f"({error.filename or directory.parent}). Choose a writable folder."
        ) from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _files_to_keep(directory):
    """The relative paths in an existing `directory` that odezoo did not write; raises where
    `directory` cannot become a preset folder without touching a user's file."""
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise OdezooError(f"{directory} is a file, not a folder: save the preset under another name.")
    entries = sorted(p for p in directory.rglob("*") if not p.is_dir() or p.is_symlink())
    if not entries:
        return []
    ours = preset_files(directory)
    if ours is None:
        shown = ", ".join(p.relative_to(directory).as_posix() for p in entries[:3])
        shown += ", ..." if len(entries) > 3 else ""
        raise OdezooError(
            f"{directory} holds files that odezoo did not write ({shown}) "
            "and is not an odezoo preset folder; save_pretrained leaves such folders alone. Choose a new "
            "or empty directory."
        )
    fix = "the folder is damaged or forged: save to another folder"
    paths = {
        name: inside(directory, name, f"{directory / METADATA_FILE} lists", reading=True, fix=fix)
        for name, digest in ours.items()
        if digest is not None
    }
    edited = [name for name, path in paths.items() if path.is_file() and sha256_of(path) != ours[name]]
    if edited:
        raise OdezooError(
            f"{', '.join(edited)} in {directory} changed since odezoo wrote it (its sha256 is not the one "
            f"{METADATA_FILE} records), and save_pretrained does not replace a user's file: move it out "
            "of the folder, or save to another folder."
        )
    return [p.relative_to(directory) for p in entries if p.relative_to(directory).as_posix() not in ours]


def _check_asset_names(directory, assets, keep):
    """Refuses an asset name that leaves `directory` (`inside`), names a file of the format, or a
    user's file kept in it (`keep`), before anything is written."""
    kept = {path.as_posix() for path in keep}
    for name in assets:
        relative = inside(directory, name, "Asset name").relative_to(directory).as_posix()
        if relative in FORMAT_FILES or relative in kept:
            whose = "a file of the preset format" if relative in FORMAT_FILES else "a file of yours there"
            raise OdezooError(
                f"Asset name {name!r} is {whose} ({directory / relative}); give the asset another name."
            )


def _carry(source, target):
    """Puts `source` (a user's file or link) at `target`: a hard link where the file system allows it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def check_free_space(folder, model, what, factor=2):
    """Raises before `model`'s weights (times `factor`, for optimizer state) are written to `folder` when
    the disk cannot hold them: HDF5 crashes the process on a full disk instead of raising."""
    needed = factor * sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights) + (
        1 << 20
    )
    free = shutil.disk_usage(folder).free
    if free < needed:
        free_text, needed_text = sizes(free, needed)
        raise OdezooError(
            f"Not enough disk space for {what} in {folder}: {free_text} free, about {needed_text} "
            "needed. Free some space or choose another folder; nothing was written."
        )


def load_folder(
    folder,
    *,
    metadata=None,
    expected_cls=None,
    load_weights=True,
    expected_sha256=None,
    release="",
    import_classes=None,
    **overrides,
):
    """Builds the model a preset folder describes and loads its verified weights.

    `metadata` is the folder's `metadata.json` where the caller has read it already.
    `expected_sha256` (with the preset name `release`) adds the check that the folder is the one
    this release of odezoo names.
    """
    if not isinstance(load_weights, bool):
        raise OdezooError(
            f"`load_weights` must be True or False. Received: load_weights={load_weights!r} "
            f"({type(load_weights).__name__})"
        )
    folder = Path(folder)
    metadata = read_metadata(folder) if metadata is None else metadata
    verify_folder(folder, metadata, weights=load_weights, expected_sha256=expected_sha256, release=release)
    config = read_json(folder / CONFIG_FILE)
    cls = model_class(config, folder, import_classes)
    if expected_cls is not None and not issubclass(cls, expected_cls):
        raise OdezooError(
            f"Preset {release or os.fspath(folder)!r} is a `{cls.__name__}`; call "
            f"`{cls.__name__}.from_pretrained` or `odezoo.load`."
        )
    base = cls.complete_config(config["config"])
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise OdezooError(
            f"Unknown config override(s) {unknown} for {cls.__name__}; it takes {sorted(base)}."
        )
    if "dtype" in overrides:
        check_dtype(overrides["dtype"])
    if load_weights:
        _check_overrides(cls, base, overrides, release or os.fspath(folder))
    model = cls.from_config({**base, **overrides})
    model.preset_folder = folder.absolute()
    if not load_weights:
        return model
    weights = folder / WEIGHTS_FILE
    task = model.task
    if task.changes_head(base, overrides):
        source = cls.from_config(base)
        _load_weights(source, weights, {})
        try:
            for layer in model.layers:
                if layer.name != task.head_layer and layer.weights:
                    layer.set_weights(source.get_layer(layer.name).get_weights())
        except ValueError as error:  # a safe override that still changes a layer (a flattened input)
            raise OdezooError(_misfit(model, weights, overrides, str(error))) from None
    else:
        _load_weights(model, weights, overrides)
    return model


def _check_overrides(cls, base, overrides, preset):
    """Refuses, in one line, an override of a setting the weights of `preset` were trained with: a key
    of the config `base` outside `cls.SAFE_OVERRIDES` and `cls.SAFE_CHANGES` (and `num_classes` where
    the task puts a new head on) whose value differs."""
    task = cls.task_of(cls.complete_config({**base, **overrides})).instance()
    safe = cls.SAFE_OVERRIDES | ({"num_classes"} if task.changes_head(base, overrides) else set())
    for key, value in overrides.items():
        trained = base[key]
        if key in safe or _plain(value) == _plain(trained) or (key, trained, value) in cls.SAFE_CHANGES:
            continue
        note = cls.OVERRIDE_NOTES.get(key)
        change = "changes what they compute"
        change = f"computes something else with the same weights ({note})" if note else change
        allowed = [*sorted(cls.SAFE_OVERRIDES), *(["num_classes (a new head)"] if task.head_layer else [])]
        allowed += [f"{k} {old!r} -> {new!r}" for k, old, new in cls.SAFE_CHANGES]
        raise OdezooError(
            f"The weights of preset {preset!r} were trained with {key}={trained!r}; {key}={value!r} {change}"
            f". Load the preset without `{key}=` (it builds the {key} it was trained with), or pass "
            f"`load_weights=False` and train the model anew. {cls.__name__}'s weights take the overrides: "
            f"{', '.join(allowed)}."
        )


def _plain(value):
    """`value` with tuples and arrays as lists, as `config.json` holds them (`image_shape=(28, 28, 1)` is
    no change)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def load_preset(resolved, **kwargs):
    """Builds the model of a resolved preset folder (`odezoo.presets.resolve`; keyword arguments as
    `load_folder`'s); a registered preset (no revision pinned) must carry this release's weights."""
    sha256, name = resolved.release
    return load_folder(
        resolved.folder, metadata=resolved.metadata, expected_sha256=sha256, release=name, **kwargs
    )


def model_class(config, folder, import_classes=None):
    """The odezoo model class a `config.json` names: its module (odezoo's own only) is imported and the
    class found by its registered name; for a folder written under a module name that has since moved,
    `import_classes()` (if given: `odezoo.load` imports every family) is called and the name looked up
    again."""
    module = config.get("module") or ""
    if module.startswith("odezoo."):
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # a module renamed since the folder was written: the registered name may still find it
    cls = keras.saving.get_registered_object(config.get("registered_name") or "")
    if cls is None and import_classes is not None:
        import_classes()
        cls = keras.saving.get_registered_object(config.get("registered_name") or "")
    if not (isinstance(cls, type) and issubclass(cls, PretrainedMixin)):
        raise OdezooError(
            f"{Path(folder) / CONFIG_FILE} describes {config.get('class_name')!r}, which is not an odezoo "
            "model; it is no preset folder."
        )
    return cls


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
    if problem and overrides:
        raise OdezooError(_misfit(model, weights, overrides, problem))
    if problem:
        raise OdezooError(
            f"The weights in {weights} do not fit the {type(model).__name__} its config.json describes "
            f"({problem.splitlines()[0][:200]}): the folder is damaged or mixes two models. Download it "
            "again, or write it anew with `save_pretrained`."
        )


def _misfit(model, weights, overrides, problem):
    """The message where the weights of a preset do not fit its model built with `overrides`."""
    return (
        f"The weights in {weights} do not fit {type(model).__name__} with overrides {overrides!r} "
        f"({problem.splitlines()[0][:200]}). Drop overrides that change layers; only num_classes, dtype "
        "and training options can change."
    )
