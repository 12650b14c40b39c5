"""DURR: forward Euler with one shared unit `x_{t+1} = x_t + g(x_t, x0)`, a greedy stopping policy
per image, and its input checks; the restoration task's predict / eval on a DURR preset folder."""

import json

import numpy as np
import pytest

from odezoo import DURR, OdezooError, load
from odezoo.cli import main
from odezoo.data.restoration import add_noise, photographs
from odezoo.models.durr.durr_layers import policy_values
from odezoo.preset_folder import read_metadata, write_metadata

TINY = {"features": 8, "depth": 3, "policy_features": 4, "policy_depth": 2}


def noisy(shape=(3, 20, 24, 1), seed=0):
    clean = np.random.default_rng(seed).uniform(0.2, 0.8, shape).astype("float32")
    return add_noise(clean, 25.0, seed)


def randomise(model, seed=0):
    """Random weights everywhere (the unit's last convolution starts at zero: the identity)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
    return model


def set_policy(model, weights):
    """Sets the policy's layers to `weights`: `{layer name: (kernel, bias)}`, zeros elsewhere."""
    for layer in [*model.policy.convs, model.policy.head]:
        kernel, bias = weights.get(layer.name, (np.zeros(layer.kernel.shape), np.zeros(layer.bias.shape)))
        layer.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])


def constant_policy(model, stop):
    """A policy that always stops (`stop=True`) or always continues."""
    set_policy(model, {"q": (np.zeros(model.policy.head.kernel.shape), [1.0, -1.0] if stop else [-1.0, 1.0])})


def test_default_sizes_match_the_paper():
    """≈1.8e5 parameters in the unit and ≈1.0e5 in the policy (docs/papers.md#durr), grey and colour."""
    for channels, unit, policy in ((1, 186_433, 97_554), (3, 189_891, 98_130)):
        model = DURR(channels=channels)
        assert model.unit.count_params() == unit and model.policy.count_params() == policy
        assert model.count_params() == unit + policy and model.min_image_size == 15


def test_zero_steps_return_the_input():
    x = noisy()
    model = randomise(DURR(num_steps=0, **TINY))
    np.testing.assert_array_equal(np.asarray(model(x)), x)


def test_the_parameters_do_not_depend_on_the_number_of_steps():
    counts = {DURR(num_steps=n, **TINY).count_params() for n in (0, 1, 5)}
    assert len(counts) == 1


def test_every_step_applies_the_same_unit():
    """Two steps are the one-step model's unit applied twice, each time with the degraded image."""
    x = noisy()
    one = randomise(DURR(num_steps=1, **TINY))
    two = DURR(num_steps=2, **TINY)
    two.set_weights(one.get_weights())  # one weight tree whatever the depth
    x1 = np.asarray(one(x))
    np.testing.assert_allclose(x1, x + np.asarray(one.unit.increment(x, x)), atol=1e-6)  # forward Euler
    np.testing.assert_allclose(np.asarray(two(x)), np.asarray(one.unit(x1, x)), atol=1e-6)
    assert not np.allclose(np.asarray(two(x)), np.asarray(one(x1)), atol=1e-4)  # x0 stays the input


def test_inference_is_deterministic():
    x = noisy()
    model = randomise(DURR(num_steps=3, **TINY))
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    (a, steps_a), (b, steps_b) = model.restore(x, max_steps=4), model.restore(x, max_steps=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(steps_a, steps_b)


def test_a_policy_that_stops_takes_no_step_and_one_that_continues_takes_all():
    x = noisy()
    model = randomise(DURR(num_steps=4, **TINY))
    constant_policy(model, stop=True)
    restored, steps = model.restore(x, max_steps=4)
    np.testing.assert_array_equal(restored, x)
    assert steps.tolist() == [0, 0, 0]
    constant_policy(model, stop=False)
    restored, steps = model.restore(x, max_steps=4)
    assert steps.tolist() == [4, 4, 4]
    np.testing.assert_allclose(restored, np.asarray(model(x)), atol=1e-6)  # call = 4 steps
    assert model.restore(x)[1].tolist() == [model.max_steps] * 3  # the config's cap


def test_a_fixed_depth_takes_exactly_its_steps_whatever_the_policy():
    x = noisy()
    model = randomise(DURR(num_steps=3, **TINY))
    constant_policy(model, stop=True)
    restored, steps = model.restore(x, steps=3)
    assert steps.tolist() == [3, 3, 3]
    np.testing.assert_allclose(restored, np.asarray(model(x)), atol=1e-6)
    np.testing.assert_array_equal(model.restore(x, steps=0)[0], x)
    with pytest.raises(
        OdezooError,
        match=r"Give `steps` \(a fixed depth\) or `max_steps` \(a cap on the "
        r"policy's choice\), not both\. Received: steps=2, max_steps=4",
    ):
        model.restore(x, steps=2, max_steps=4)


def mean_policy(model):
    """A unit that adds 0.1 per step and a policy that continues while the mean of `x_t` is below 0.5
    (`q_stop = mean`, `q_continue = 1 - mean`): images starting at 0.05, 0.32 and 0.9 stop after 5, 2
    and 0 steps."""
    last = model.unit.convs[-1]
    last.set_weights([np.zeros(last.kernel.shape), np.full(last.bias.shape, 0.1)])
    passes = {}
    for conv in model.policy.convs:  # each convolution passes channel 0 (x_t) through
        kernel = np.zeros(conv.kernel.shape)
        kernel[1, 1, 0, 0] = 1.0
        passes[conv.name] = (kernel, np.zeros(conv.bias.shape))
    head = np.zeros(model.policy.head.kernel.shape)
    head[0] = [1.0, -1.0]
    set_policy(model, {**passes, "q": (head, [0.0, 1.0])})
    return model


STARTS = np.concatenate([np.full((1, 16, 16, 1), v, "float32") for v in (0.05, 0.32, 0.9)])


def test_each_image_stops_on_its_own():
    model = mean_policy(DURR(**TINY))
    restored, steps = model.restore(STARTS, max_steps=10)
    assert steps.tolist() == [5, 2, 0]
    np.testing.assert_allclose(restored[:, 0, 0, 0], [0.55, 0.52, 0.9], atol=1e-5)
    assert model.restore(STARTS, max_steps=3)[1].tolist() == [3, 2, 0]


def test_the_restore_model_stops_each_image_where_restore_does():
    """`restore_model` (the loop in the graph, for export) against `restore`."""
    model = mean_policy(DURR(**TINY))
    restored, steps = (np.asarray(v) for v in model.restore_model(max_steps=10)(STARTS))
    assert steps.tolist() == [5, 2, 0]
    np.testing.assert_allclose(restored, model.restore(STARTS, max_steps=10)[0], atol=1e-6)
    assert np.asarray(model.restore_model(max_steps=3)(STARTS)[1]).tolist() == [3, 2, 0]
    x = noisy()
    np.testing.assert_allclose(
        np.asarray(model.step_model()({"x": x, "x0": x})), np.asarray(model.unit(x, x)), atol=1e-6
    )


def test_tiled_policy_values_are_the_mean_over_the_tiles_the_policy_learned_on():
    """`policy_tile=t`: the values of an image are the mean of the policy's values on its t x t tiles
    (cut from the top-left corner, the remainder left out; a side shorter than t is one tile), in
    `restore` and in the graph loop of `restore_model` alike; 0 is the whole image."""
    model = randomise(DURR(**TINY, policy_tile=8), seed=3)
    x, x0 = noisy((2, 20, 24, 1), seed=1), noisy((2, 20, 24, 1), seed=2)
    by_hand = np.mean(
        [
            np.asarray(model.policy(x[:, r : r + 8, c : c + 8], x0[:, r : r + 8, c : c + 8]))
            for r in (0, 8)
            for c in (0, 8, 16)
        ],
        axis=0,
    )
    np.testing.assert_allclose(
        np.asarray(policy_values(model.policy, x, x0, 8)), by_hand, rtol=1e-5, atol=1e-6
    )
    whole = np.asarray(model.policy(x, x0))
    assert np.abs(whole - by_hand).max() > 1e-3  # the tiles are not the whole image
    np.testing.assert_allclose(np.asarray(policy_values(model.policy, x, x0, 0)), whole, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(policy_values(model.policy, x, x0, 64)), whole, rtol=1e-5, atol=1e-6
    )
    steps = model.restore(x0, max_steps=6)[1]
    np.testing.assert_array_equal(np.asarray(model.restore_model(max_steps=6)(x0)[1]), steps)


def test_a_config_saved_before_policy_tile_means_the_whole_image(tmp_path):
    folder = DURR(**TINY).save_pretrained(tmp_path / "old", metadata={"preset": "old"})
    config = json.loads((folder / "config.json").read_text())
    del config["config"]["policy_tile"]
    (folder / "config.json").write_text(json.dumps(config))
    write_metadata(folder, read_metadata(folder))
    assert DURR.from_pretrained(folder).policy_tile == 0
    assert DURR.from_pretrained(folder, policy_tile=40).policy_tile == 40  # how it looks, not what it learned


def test_any_size_and_colour():
    model = randomise(DURR(channels=3, num_steps=2, **TINY))
    for shape in ((1, 17, 23, 3), (2, 32, 16, 3)):
        assert np.asarray(model(noisy(shape))).shape == shape
        restored, steps = model.restore(noisy(shape), max_steps=2)
        assert restored.shape == shape and steps.shape == (shape[0],)


@pytest.mark.parametrize(
    "x,message",
    [
        (noisy() * 255, r"expects values in \[0, 1\] \(degraded images may overshoot it by 2\); received "
                        r"values in \[.*\]\. Divide 8-bit images by 255\."),
        (noisy((2, 20, 20, 3)), r"received \(2, 20, 20, 3\)\. The images have 3 channels; the model takes "
                                r"1\."),
        (noisy((1, 20, 6, 1)), r"needs images of at least 7x7 pixels \(the receptive field of one step\); "
                               r"received 20x6\."),
        (np.where(np.arange(20)[:, None] == 3, np.nan, noisy((1, 20, 20, 1))).astype("float32"),
         r"received 20 NaN/inf values in 1 images"),
        (noisy((20, 20, 1)), r"received \(20, 20, 1\)\. Add a batch axis: x\[None\]\."),
        ((noisy() * 255).astype("uint8"), r"received dtype uint8\. Convert with"),
    ],
)  # fmt: skip
def test_bad_inputs_are_refused_with_what_fits(x, message):
    model = DURR(**TINY)
    for run in (model, model.restore, model.predict):
        with pytest.raises(OdezooError, match=message):
            run(x)


def test_noise_within_the_overshoot_is_accepted():
    model = DURR(**TINY)
    x = np.full((1, 16, 16, 1), 0.5, "float32")
    x[0, 0, 0, 0], x[0, 1, 1, 0] = -1.9, 2.9
    assert model.restore(x, max_steps=1)[0].shape == x.shape


def test_durr_brings_its_own_restoration_task():
    """DURR's task (in its folder) restores with the policy and exports the step and the loop; the
    generic task restores a model of fixed depth with `predict` and exports the model itself."""
    from odezoo.models.durr.durr_task import DURRRestoration
    from odezoo.tasks import get_task

    model = mean_policy(DURR(**TINY))
    task, generic = model.task, get_task("image_restoration")
    assert type(task) is DURRRestoration and DURR.TASK == model.TASK == generic.name
    restored, steps = task.restore(model, STARTS, max_steps=10)
    expected, expected_steps = model.restore(STARTS, max_steps=10)
    np.testing.assert_array_equal(restored, expected)
    assert steps.tolist() == expected_steps.tolist() == [5, 2, 0]
    assert set(task.export_parts(model, {})) == {"step", "restore"}
    assert set(generic.export_parts(model, {})) == {"model"}
    np.testing.assert_array_equal(generic.restore(model, STARTS)[0], model.predict(STARTS, verbose=0))
    assert generic.restore(model, STARTS)[1] is None
    generic.check_inputs(model, noisy((1, 20, 6, 1)))  # the receptive field is DURR's check, not the task's


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    model = randomise(DURR(num_steps=2, max_steps=3, **TINY))
    constant_policy(model, stop=False)
    return model.save_pretrained(
        tmp_path_factory.mktemp("durr") / "tiny", metadata={"dataset": "skimage_photos"}
    )


def test_predict_writes_the_restored_files_and_the_steps_taken(capsys, folder, tmp_path):
    import tensorflow as tf

    image = np.round(np.clip(noisy((1, 20, 30, 1))[0], 0, 1) * 255).astype("uint8")
    tf.io.write_file(str(tmp_path / "noisy.png"), tf.io.encode_png(image))
    assert main(["predict", str(folder), str(tmp_path / "noisy.png"), "--out", str(tmp_path / "out"),
                 "--max-steps", "2"]) == 0  # fmt: skip
    (result,) = json.loads(capsys.readouterr().out)
    assert result["steps"] == 2 and result["output"] == str(tmp_path / "out" / "noisy.png")
    assert tf.io.decode_png(tf.io.read_file(result["output"])).shape == (20, 30, 1)

    assert (
        main(["predict", str(folder), str(tmp_path / "noisy.png"), "--out", str(tmp_path / "restored.png")])
        == 0
    )
    (result,) = json.loads(capsys.readouterr().out)
    assert result["output"] == str(tmp_path / "restored.png") and result["steps"] == 3
    assert tf.io.decode_png(tf.io.read_file(result["output"])).shape == (20, 30, 1)
    before = (tmp_path / "noisy.png").read_bytes()
    for out, message in (
        (tmp_path, f"Writing {tmp_path / 'noisy.png'} would overwrite an input image; choose another --out"),
        (tmp_path / "noisy.png", "would overwrite an input image"),
    ):
        assert main(["predict", str(folder), str(tmp_path / "noisy.png"), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "noisy.png").read_bytes() == before
    assert main(["predict", str(folder), str(tmp_path / "noisy.png"), str(tmp_path / "restored.png"),
                 "--out", str(tmp_path / "both.png")]) == 2  # fmt: skip
    assert (
        "--out " + str(tmp_path / "both.png") + " names one file but 2 images were given"
        in capsys.readouterr().err
    )

    (tmp_path / "bad.png").write_text("not an image")
    assert main(["predict", str(folder), str(tmp_path / "bad.png")]) == 2
    assert "Cannot read image" in capsys.readouterr().err


def test_eval_takes_a_noise_level_or_a_jpeg_quality(capsys, folder, tmp_path):
    import tensorflow as tf

    for i in range(2):
        image = np.random.default_rng(i).integers(0, 256, (24, 20 + 4 * i, 1), dtype="uint8")
        tf.io.write_file(str(tmp_path / f"{i}.png"), tf.io.encode_png(image))
    common = ["eval", str(folder), "--dataset", str(tmp_path)]
    assert main([*common, "--quality", "10"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["quality"] == 10 and result["num_examples"] == 2 and result["mean_steps"] == 3
    assert main([*common, "--sigma", "50", "--max-steps", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sigma"] == 50 and result["mean_steps"] == 1 and 13 < result["degraded_psnr"] < 15
    assert main([*common, "--sigma", "50", "--steps", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mean_steps"] == 2 and 0 < result["ssim"] < 1
    assert main([*common, "--sigma", "50", "--steps", "2", "--max-steps", "1"]) == 2
    assert "Give `steps` (a fixed depth) or `max_steps`" in capsys.readouterr().err
    assert main([*common, "--sigma", "50", "--quality", "10"]) == 2
    assert "Give --sigma (noise) or --quality (JPEG), not both" in capsys.readouterr().err
    assert main([*common, "--quality", "101"]) == 2
    assert "JPEG `quality` must be an integer in 1..100. Received: quality=101" in capsys.readouterr().err


def test_a_preset_folder_keeps_the_unit_and_the_policy(tmp_path):
    """Round trip with random weights (a fresh unit is the identity, which would hide a lost unit)."""
    x = noisy()
    model = randomise(DURR(num_steps=2, max_steps=4, **TINY))
    loaded = DURR.from_pretrained(model.save_pretrained(tmp_path / "durr"))
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    (a, steps_a), (b, steps_b) = model.restore(x), loaded.restore(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(steps_a, steps_b)
    assert loaded.max_steps == 4 and [w.path for w in loaded.weights] == [w.path for w in model.weights]


@pytest.mark.export
@pytest.mark.parametrize("fmt", ["saved_model", "tflite", "onnx"])
def test_the_step_and_the_restore_loop_export_and_match_keras(folder, tmp_path, fmt):
    from odezoo.export import export_preset

    report = export_preset(str(folder), fmt, output_dir=tmp_path)
    assert set(report["parts"]) == {"step", "restore"}
    assert report["parts"]["step"]["max_abs_diff"] <= 1e-4
    restored, steps = report["parts"]["restore"]["outputs"].values()
    assert restored["max_abs_diff"] <= 1e-4 and steps["max_abs_diff"] == 0


@pytest.mark.export
def test_the_exported_restore_loop_stops_each_image_on_its_own(tmp_path):
    import tensorflow as tf

    from odezoo.export import export_model

    model = mean_policy(DURR(**TINY))
    report = export_model(
        model.restore_model(max_steps=10), tmp_path / "restore", "saved_model", sample=STARTS
    )
    loaded = tf.saved_model.load(report["path"])
    restored, steps = loaded.serve(STARTS)
    assert steps.numpy().tolist() == [5, 2, 0]
    np.testing.assert_allclose(restored.numpy(), model.restore(STARTS, max_steps=10)[0], atol=1e-6)


def test_the_published_policy_stops_earlier_on_a_lightly_degraded_image():
    """The learned terminal time (issue 29): on a 128 x 128 crop of each held-out photograph, noised
    here at sigma = 15 and at sigma = 50, the published denoiser takes fewer steps on the lighter noise,
    and stops before its cap there. (Not on drawings: a gradient with flat discs runs to the cap at
    sigma = 15, where 2 steps are best; MODEL_CARDS.md.)"""
    model = load("durr_denoise_gray")
    for photo in photographs("test", 1):
        middle = photo[None, photo.shape[0] // 2 :, photo.shape[1] // 2 :][:, :128, :128]
        light, heavy = (int(model.restore(add_noise(middle, sigma, 0))[1][0]) for sigma in (15.0, 50.0))
        assert light < heavy and light < model.max_steps, (light, heavy)
