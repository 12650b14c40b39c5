"""The round trip of every bundled preset (issue 27; keras-hub's `run_preset_test` on odezoo's harness):
load -> fine-tune -> `save_pretrained` -> `odezoo.load` of the folder -> the same outputs -> `odezoo
predict` and `odezoo eval` on the folder -> SavedModel export of the folder.

Fine-tuning, by task:

- a task with a head (`model.task.head_layer`: image and text classification): a new head with
  `num_classes` other than the preset's, two steps of `fit` on a handful of examples (bundled
  Fashion-MNIST images; the task's sample token ids). The saved folder has no data set of its own, so
  `odezoo eval` without `--dataset` says so in one line, and with the preset's data set (`--dataset`)
  refuses, in one line, a head whose class count is not the data set's;
- masked LM and translation (no head): two steps of `fit` on the task's sample token ids (the
  targets: the input ids, random ids), then evaluated on the preset's own data;
- PDE-Net (fine-tuned by its BFGS recipe) and DURR (trained in two stages, the restorer then the
  policy): no training; the round trip checks the folder as saved.

`odezoo predict` takes what each task takes: images -> the bundled samples (no input); translation and
text classification -> a sentence; fill-mask -> a text with `<mask>`; DURR -> a PNG file (its predict
refuses no input); PDE -> nothing: its predict points to `eval` and `rollout`, in one line (asserted).

Every family runs in the default run on its cheapest preset; the other presets' cases, and the
exports of the slow ones, are `slow` (the exports are also `export`, as in `tests/test_export.py`).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import odezoo
from odezoo import cli
from odezoo.export import export_preset
from odezoo.preset_folder import read_metadata
from odezoo.tasks.image_classification import bundled_sample

SLOW = pytest.mark.slow
# The cheapest preset of each family runs by default (the default run stays under 10 minutes).
DEFAULT = {
    "lm_resnet20_fashion_mnist",
    "small_cnn_natural_fashion_mnist",
    "mean_field_resnet8_fashion_mnist",
    "pde_net_linear_cd",
    "durr_denoise_gray",
    "bert_small_dictionary_en_dictionary_tags",
}
# Presets whose SavedModel export is not `slow` (`-m export` runs them): those of each task but
# translation, whose three parts (encoder, decoder step, greedy loop) take about a minute on 2 CPU cores.
QUICK_EXPORT = DEFAULT | {"pde_net2_heat", "bert_small_dictionary_en"}


def _cases(slow_unless):
    return [
        pytest.param(name, id=name, marks=() if name in slow_unless else SLOW)
        for name in odezoo.list_presets()
    ]


def test_every_family_runs_by_default():
    from odezoo.presets import get_preset

    families = {get_preset(name).family for name in odezoo.list_presets()}
    assert families == {get_preset(name).family for name in DEFAULT}
    assert DEFAULT <= set(odezoo.list_presets())


def _tensors(x):
    """Sample inputs as tensors (a model's NumPy inputs are checked as a user's data; these are not)."""
    return keras.tree.map_structure(tf.convert_to_tensor, x)


def _outputs(model, sample):
    return [np.asarray(y) for y in keras.tree.flatten(model(_tensors(sample), training=False))]


def _fine_tune(name, model, metadata):
    """`(model, new head's num_classes or None)`: the model fine-tuned as the module docstring says."""
    task = model.task
    rng = np.random.default_rng(0)
    optimizer = keras.optimizers.Adam(1e-4)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if task.head_layer is not None:
        num_classes = model.num_classes + 1
        model = odezoo.load(name, num_classes=num_classes)
        if task.name == "image_classification":
            x, _ = bundled_sample(8)
        else:
            x = model.task.sample_inputs(model, metadata)
        y = rng.integers(0, num_classes, len(keras.tree.flatten(x)[0]))
        model.compile(optimizer, sparse)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # two steps
        return model, num_classes
    if task.name in ("masked_lm", "translation"):
        x = task.sample_inputs(model, metadata)
        first = keras.tree.flatten(x)[0]
        y = first if task.name == "masked_lm" else rng.integers(4, model.vocabulary_size, first.shape)
        model.compile(optimizer, sparse)
        model.fit(_tensors(x), y, batch_size=4, epochs=1, verbose=0)  # two steps
        return model, None
    return model, None  # PDE-Net (BFGS recipe), DURR (two-stage recipe): no training


def _cli(capsys, *argv):
    """`(exit status, stdout, stderr)` of `odezoo ARGV`."""
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status, err, *fragments):
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("odezoo "), err
    for fragment in fragments:
        assert fragment in err, err


def _predict(capsys, tmp_path, folder, task, num_classes):
    """`odezoo predict FOLDER ...` with the inputs the task takes; checks what it prints."""
    if task.name == "image_classification":
        status, out, err = _cli(capsys, "predict", folder, "--sample", 2)
        assert status == 0, err
        result = json.loads(out)
        assert len(result) == 2 and all(len(r["top"]) == 3 for r in result)
        if num_classes:  # a new head: classes by index (the preset's names are not its labels)
            assert all(c["class"] in range(num_classes) for r in result for c in r["top"])
    elif task.name == "translation":
        status, out, err = _cli(capsys, "predict", folder, "das Haus", "--beam", 1)
        assert status == 0, err
        [result] = json.loads(out)
        assert result["source"] == "das Haus" and isinstance(result["translation"], str)
    elif task.name == "masked_lm":
        status, out, err = _cli(capsys, "predict", folder, "the <mask> is red", "--top-k", 2)
        assert status == 0, err
        [result] = json.loads(out)
        assert len(result["masks"]) == 1 and len(result["masks"][0]) == 2
    elif task.name == "text_classification":
        status, out, err = _cli(capsys, "predict", folder, "a small house")
        assert status == 0, err
        [result] = json.loads(out)
        assert result["label"] in range(num_classes) and 0 < result["probability"] <= 1
    elif task.name == "image_restoration":
        status, out, err = _cli(capsys, "predict", folder)  # no input: refused, saying what to give
        _one_line_error(status, err, "Give image files")
        image = tf.image.resize(bundled_sample(1)[0], (32, 32)).numpy()[0]
        png = tmp_path / "noisy.png"
        png.write_bytes(tf.io.encode_png((image * 255).round().astype("uint8")).numpy())
        out_dir = tmp_path / "restored"
        status, out, err = _cli(capsys, "predict", folder, png, "--out", out_dir, "--max-steps", 2)
        assert status == 0, err
        assert len(json.loads(out)) == 1 and len(list(out_dir.glob("*.png"))) == 1
    elif task.name == "pde_rollout":
        status, out, err = _cli(capsys, "predict", folder)  # no input taken: points to eval and rollout
        _one_line_error(status, err, "odezoo eval", "rollout")
    else:
        raise AssertionError(f"no predict case for the task {task.name}")


# The smallest evaluation each task takes (no `--dataset`: the folder's own).
SMALL_EVAL = {
    "image_classification": ("--split", "sample", "--limit", 2),
    "masked_lm": ("--limit", 2),
    "translation": ("--limit", 2, "--beam", 1),
    "text_classification": ("--limit", 2),
    "image_restoration": ("--limit", 1, "--max-steps", 2),
    "pde_rollout": ("--trajectories", 2),
}


def _eval(capsys, folder, task, num_classes, source_metadata):
    small = SMALL_EVAL[task.name]
    status, out, err = _cli(capsys, "eval", folder, *small)
    if num_classes is None:
        assert status == 0, err
        result = json.loads(out)
        assert result["preset"] == str(folder)
        return result
    # A new head: no data set of its own; the preset's has another number of classes.
    _one_line_error(status, err, "does not record its data set; pass --dataset")
    status, out, err = _cli(capsys, "eval", folder, "--dataset", source_metadata["dataset"], *small)
    _one_line_error(status, err, str(num_classes), "classes")
    return None


def _saved(name, root):
    """Loads preset `name`, fine-tunes it, saves it under `root` and checks that the folder loads as the
    model it was saved from; returns `(folder, task, new head's num_classes or None, preset metadata)`."""
    source = odezoo.load(name)
    metadata = read_metadata(source.preset_folder)
    model, num_classes = _fine_tune(name, source, metadata)
    task = model.task
    folder = model.save_pretrained(root / "saved")

    reloaded = odezoo.load(folder)
    assert type(reloaded) is type(model) and reloaded.get_config() == model.get_config()
    saved = read_metadata(folder)
    assert saved["base"] == name and saved["task"] == task.name
    for key in ("dataset", "class_names"):
        assert saved.get(key) == (None if num_classes else metadata.get(key)), key
    sample = task.sample_inputs(model, saved)
    for expected, actual in zip(_outputs(model, sample), _outputs(reloaded, sample), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    return folder, task, num_classes, metadata


@pytest.mark.parametrize("name", _cases(DEFAULT))
def test_round_trip(name, tmp_path, capsys):
    folder, task, num_classes, metadata = _saved(name, tmp_path)
    _predict(capsys, tmp_path, folder, task, num_classes)
    _eval(capsys, folder, task, num_classes, metadata)


@pytest.mark.export
@pytest.mark.parametrize("name", _cases(QUICK_EXPORT))
def test_round_trip_export(name, tmp_path):
    """The saved folder of the round trip exports to SavedModel, checked against Keras by its task."""
    folder, *_ = _saved(name, tmp_path)
    report = export_preset(str(folder), "saved_model", output_dir=tmp_path / "export")
    reports = report["parts"].values() if "parts" in report else [report]
    assert reports and all(r["format"] == "saved_model" for r in reports), report
    manifest = json.loads((tmp_path / "export" / "MANIFEST.json").read_text())
    assert manifest, manifest
