"""The tasks: every one is registered and declares its contract; the restoration and text tasks,
which no published preset uses yet, on toy models (their measures and messages)."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from odezoo import OdezooError
from odezoo.cli import build_parser
from odezoo.data.restoration import add_noise
from odezoo.tasks import TASKS, all_tasks, get_task
from odezoo.tasks.image_restoration import psnr, ssim
from odezoo.tasks.text import check_token_ids


def test_every_task_declares_its_contract():
    tags = {task.name: task.pipeline_tag for task in all_tasks()}
    assert set(tags) == set(TASKS) and all(tags.values())
    assert tags["translation"] == "translation" and tags["image_restoration"] == "image-to-image"
    with pytest.raises(OdezooError, match="Unknown task 'segmentation'"):
        get_task("segmentation")


def test_the_cli_offers_every_tasks_options():
    args = build_parser().parse_args(["eval", "x", "--sigma", "15", "--trajectories", "3"])
    assert vars(args)["sigma"] == 15.0 and vars(args)["trajectories"] == 3 and "limit" not in vars(args)


def test_the_pde_task_names_no_family_and_starts_no_tensorflow():
    """`odezoo.tasks.pde_rollout` imports no model; PDE-Net's part of the task (`pde_net_task`) only the
    generic task, so the CLI reads either before TensorFlow starts."""
    code = (
        "import sys, odezoo.tasks.pde_rollout; print(sorted(m for m in sys.modules if 'models' in m)); "
        "import odezoo.models.pde_net.pde_net_task; "
        "print(sorted({'keras', 'tensorflow', 'odezoo.models.pde_net.pde_net2'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split("\n")[:2] == ["[]", "[]"], out.stderr[-2000:]


def _identity(shape, name="identity"):
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Identity()(inputs), name=name)


def test_ssim_is_wang_et_al_with_a_gaussian_window():
    """Against scikit-image's implementation with the same window (Gaussian, sigma 1.5, 11 wide)."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 1, (2, 32, 40, 1)).astype("float32")
    restored = np.clip(clean + rng.normal(0, [[[[0.05]]], [[[0.2]]]], clean.shape), 0, 1).astype("float32")
    expected = [
        structural_similarity(c[..., 0], r[..., 0], data_range=1.0, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for c, r in zip(clean, restored)
    ]  # fmt: skip
    np.testing.assert_allclose(ssim(clean, restored), expected, atol=2e-3)
    np.testing.assert_allclose(ssim(clean, clean), [1.0, 1.0], atol=1e-6)


def test_psnr_is_ten_log10_of_one_over_the_mse():
    clean = np.zeros((2, 4, 4, 1))
    restored = clean + np.array([0.1, 0.01])[:, None, None, None]
    np.testing.assert_allclose(psnr(clean, restored), [20.0, 40.0])
    noisy = add_noise(np.full((1, 64, 64, 1), 0.5), 25.0, seed=3)
    np.testing.assert_allclose(np.std(noisy - 0.5), 25 / 255, rtol=0.05)
    np.testing.assert_array_equal(noisy, add_noise(np.full((1, 64, 64, 1), 0.5), 25.0, seed=3))


def test_restoration_evaluation_scores_the_identity_as_the_clipped_noisy_input():
    task = get_task("image_restoration")
    result = task.evaluate(_identity((28, 28, 1)), {"dataset": "fashion_mnist"}, split="sample", limit=64)
    assert result["num_examples"] == 64 and "mean_steps" not in result
    assert result["degraded_psnr"] == pytest.approx(20 * np.log10(255 / 25), abs=0.05)  # unclipped noise
    assert result["degraded_psnr"] < result["psnr"] < 23  # the restored images are clipped to [0, 1]
    metadata = {"metrics": [{"metric": "psnr", "value": 31.234, "split": "test", "sigma": 25}]}
    assert task.headline(metadata) == "31.23 dB PSNR (test, sigma 25)"
    for flag, option in (("--steps", {"steps": 2}), ("--max-steps", {"max_steps": 2})):
        with pytest.raises(OdezooError, match=f"^{flag} applies to models that choose their depth; identity "
                                              "has a fixed one.$"):  # fmt: skip
            task.evaluate(_identity((28, 28, 1)), {"dataset": "fashion_mnist"}, split="sample", **option)


def test_restoration_evaluation_defaults_to_the_presets_own_degradation():
    """Without --sigma / --quality a preset is scored on the degradation of its headline (a JPEG
    deblocker on JPEG, not on noise of sigma 25); one that records none on noise of sigma 25."""
    import json
    from pathlib import Path

    from odezoo.tasks.image_restoration import own_degradation

    weights = Path(__file__).parents[1] / "weights"
    deblocker = json.loads((weights / "durr_deblock_jpeg" / "metadata.json").read_text())
    assert own_degradation(deblocker) == {"quality": 20}
    task, model = get_task("image_restoration"), _identity((28, 28, 1))
    common = {"dataset": "fashion_mnist", "split": "sample", "limit": 16}
    metadata = {"metrics": [{**m, "dataset": "fashion_mnist"} for m in deblocker["metrics"]]}
    result = task.evaluate(model, metadata, **common)
    assert result["quality"] == 20 and "sigma" not in result
    assert result == task.evaluate(model, {}, quality=20, **common)
    assert task.evaluate(model, metadata, sigma=25, **common)["sigma"] == 25  # a flag still wins
    assert task.evaluate(model, {}, **common)["sigma"] == 25
    denoiser = {"metrics": [{"metric": "psnr", "value": 30.0, "split": "test", "sigma": 50.0}]}
    assert task.evaluate(model, denoiser, **common)["sigma"] == 50


def test_the_image_tasks_name_no_family_and_probe_no_model():
    """Family behaviour lives in the family's task subclass (DURR's in its folder); the generic image
    tasks ask a model only what their hooks declare."""
    import inspect

    from odezoo.tasks import image_classification, image_restoration

    for module in (image_classification, image_restoration):
        source = inspect.getsource(module)
        assert "odezoo.models" not in source and "hasattr(" not in source and "DURR" not in source


def test_restoration_export_check_fails_on_drift():
    task = get_task("image_restoration")
    expected = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1))
    fields, problem = task.agreement(expected, expected + 1e-6, "onnx")
    assert problem is None and fields["psnr_vs_keras"] > 100
    _, problem = task.agreement(expected, expected + 0.01, "onnx")
    assert problem == "differs from Keras by 0.01 (tolerance 0.0001)"


def _toy_translator(vocabulary=32):
    source, target = (
        keras.Input((None,), dtype="int32", name="source"),
        keras.Input((None,), dtype="int32", name="target"),
    )
    embed = keras.layers.Embedding(vocabulary, 4)
    pooled = keras.layers.GlobalAveragePooling1D()(embed(source))
    logits = keras.layers.Dense(vocabulary)(embed(target) + keras.ops.expand_dims(pooled, 1))
    model = keras.Model([source, target], logits, name="toy")
    model.vocabulary_size = vocabulary
    return model


@pytest.mark.parametrize(
    "inputs,message",
    [
        ([np.zeros((1, 3)), np.zeros((1, 3), int)], "takes integer token ids .*; received dtype float64"),
        ([np.zeros(3, int), np.zeros((1, 3), int)], "received \\(3,\\). Add a batch axis: ids\\[None\\]"),
        ([np.array([[1, 32]]), np.zeros((1, 3), int)], "values in \\[1, 32\\] but takes a vocabulary of 32"),
        ([np.zeros((1, 3), int)], "takes 2 input\\(s\\)"),
    ],
)
def test_token_id_checks_say_what_fits(inputs, message):
    with pytest.raises(OdezooError, match=message):
        check_token_ids(_toy_translator(), inputs)


def test_keras_hub_style_named_inputs_with_padding_masks():
    ids = keras.Input((None,), dtype="int32", name="encoder_token_ids")
    mask = keras.Input((None,), dtype="int32", name="encoder_padding_mask")
    model = keras.Model([ids, mask], keras.layers.Embedding(8, 2)(ids) * keras.ops.expand_dims(mask, -1))
    model.vocabulary_size = 8
    good = {
        "encoder_token_ids": np.array([[5, 7, 0]]),
        "encoder_padding_mask": np.array([[True, True, False]]),
    }
    assert check_token_ids(model, good)["encoder_padding_mask"].tolist() == [[1, 1, 0]]
    with pytest.raises(OdezooError, match="holds values in \\[0, 2\\] but takes a 0/1 padding mask"):
        check_token_ids(model, {**good, "encoder_padding_mask": np.array([[1, 2, 0]])})
    with pytest.raises(OdezooError, match="missing \\['encoder_padding_mask'\\]"):
        check_token_ids(model, {"encoder_token_ids": good["encoder_token_ids"]})


def test_text_sample_inputs_and_agreement():
    model, task = _toy_translator(), get_task("translation")
    sample = task.sample_inputs(model, {})
    assert sorted(sample) == sorted(t.name for t in model.inputs)  # by name: what fit and export take
    assert all(s.dtype == np.int32 and 4 <= s.min() and s.max() < 32 for s in sample.values())
    logits = np.asarray(model(sample))
    assert task.agreement(logits, logits, "tflite")[1] is None
    assert "top-1 agreement" in task.agreement(logits, -logits, "tflite")[1]
    metadata = {"metrics": [{"metric": "bleu", "value": 34.51, "dataset": "iwslt14", "split": "test"}]}
    assert task.headline(metadata) == "34.51 bleu (iwslt14 test)"
