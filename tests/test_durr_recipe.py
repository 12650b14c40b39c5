"""DURR recipe (issues 11, 29): names, settings checked first, the per-level step table, the policy's
photographs apart from the unit's, and a tiny run of both stages that writes a loadable preset and
resumes where it was stopped (slow)."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

import odezoo
from odezoo import OdezooError
from odezoo.data.restoration import photographs
from odezoo.recipes import RECIPES
from odezoo.recipes.durr import (
    DEBLOCK,
    DENOISE,
    Config,
    _ReplayPolicyStage,
    _training_images,
    _UnitStage,
    optimal_stopping,
    train,
)

SMOKE = replace(  # episodic Q-learning on every second photograph (the class's defaults)
    Config(), features=4, depth=3, policy_features=2, policy_depth=2, patch_size=16, batch_size=4,
    steps_per_epoch=3, unit_steps=2, unit_epochs=1, policy_epochs=2, max_steps=3, replay_size=50,
    target_update=2, limit=2, eval_levels="25,65", step_table="", policy_every=2,
)  # fmt: skip


def test_recipes_are_named_after_their_presets():
    assert [c.preset_name() for c in (DENOISE, DEBLOCK)] == [
        "durr_denoise_gray",
        "durr_deblock_jpeg",
    ]
    assert all(RECIPES[c.preset_name()][1] == c for c in (DENOISE, DEBLOCK))
    assert replace(DENOISE, channels=3, seed=1).preset_name() == "durr_denoise_color_seed1"
    assert replace(DEBLOCK, dataset="div2k").preset_name() == "durr_deblock_jpeg_div2k"


def test_the_step_table_gives_each_level_its_steps():
    config = replace(DENOISE, step_table="50:9,15:4,30:6")
    levels = np.array([5.0, 15.0, 20.0, 30.0, 45.0, 70.0])
    fake = type("S", (), {"table": config.table(), "config": config})()
    assert _UnitStage.steps_for(fake, levels).tolist() == [4, 4, 6, 6, 9, 9]
    fixed = type("S", (), {"table": [], "config": replace(DENOISE, unit_steps=8)})()
    assert _UnitStage.steps_for(fixed, levels).tolist() == [8] * 6


def test_the_policy_learns_on_photographs_the_unit_never_saw():
    def digests(images):
        return {image.tobytes() for image in images}

    every_third = replace(DENOISE, policy_every=3, policy_region=0.0)
    split = {stage: digests(ds.as_numpy_iterator()) for stage, ds in _training_images(every_third).items()}
    assert len(split["unit"]) == 10 and len(split["policy"]) == 4
    assert not split["unit"] & split["policy"]
    assert split["unit"] | split["policy"] == digests(photographs("train", 1))
    assert not (split["unit"] | split["policy"]) & digests(photographs("test", 1))
    shared = _training_images(replace(DENOISE, policy_region=0.0))
    assert digests(shared["unit"].as_numpy_iterator()) == digests(shared["policy"].as_numpy_iterator())
    region = _training_images(DENOISE)  # the published denoiser's split
    for photo, unit, policy in zip(
        photographs("train", 1), *(region[s].as_numpy_iterator() for s in ("unit", "policy"))
    ):
        # each photograph's rows: the top three quarters the unit's, the bottom quarter the policy's
        assert (
            policy.shape[0] == round(0.25 * photo.shape[0])
            and unit.shape[0] + policy.shape[0] == photo.shape[0]
        )
        np.testing.assert_array_equal(np.concatenate([unit, policy]), photo)
    pytest.importorskip("sklearn")
    own = replace(DENOISE, policy_region=0.0, policy_data="sklearn_photos")
    apart = {  # a policy on photographs of its own: scikit-learn's, none of scikit-image's
        stage: digests(ds.as_numpy_iterator()) for stage, ds in _training_images(own).items()
    }
    assert apart["unit"] == digests(photographs("train", 1)) and len(apart["policy"]) == 2
    assert not apart["policy"] & (apart["unit"] | digests(photographs("test", 1)))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"degradation": "blur"}, "`degradation` must be one of ('noise', 'jpeg'). Received: 'blur'"),
        ({"level_low": 60.0}, "`level_low` must be <= `level_high`. Received: 60.0, 50.0"),
        ({"degradation": "jpeg", "level_high": 120.0}, "JPEG `quality` must be an integer in 1..100"),
        ({"degradation": "jpeg", "level_low": 12.5}, "Received: quality=12.5"),
        ({"step_table": "15-4"}, "`step_table` must read 'level:steps,...'"),
        ({"eval_levels": "25;50"}, "`eval_levels` must be numbers separated by commas"),
        ({"epsilon_end": 1.5}, "`epsilon_end` must lie in [0, 1]. Received: epsilon_end=1.5"),
        ({"max_steps": 0}, "`max_steps` must be >= 1. Received: max_steps=0"),
        ({"crop_scales": "1,0.5"}, "`crop_scales` must be >= 1. Received: crop_scales='1,0.5'"),
        ({"crop_scales": "1;2"}, "`crop_scales` must be numbers >= 1 separated by commas"),
        ({"reward": "psnr"}, "`reward` must be one of ('db', 'mse'). Received: reward='psnr'"),
        ({"policy_method": "ppo"}, "('dqn', 'dqn_replay', 'supervised'). Received: policy_method='ppo'"),
        ({"policy_region": 1.0}, "`policy_region` must lie in [0, 1). Received: policy_region=1.0"),
        ({"policy_region": 0.25}, "Received: policy_region=0.25, policy_every=2, policy_data=''"),
        (
            {"policy_every": 3},
            "`policy_every`=3 leaves the policy no image: the training split of "
            "skimage_photos has 2 (limit=2)",
        ),
    ],
)
def test_bad_settings_are_refused_before_the_workdir_is_written(tmp_path, change, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        train(replace(SMOKE, **change), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_supervised_policys_targets_are_the_optimal_stopping_values():
    """Losses 1.0, 0.5, 0.4, 0.6 along one trajectory: continuing from x_2 loses 0.2 (stop there), from
    x_1 gains 0.1, from x_0 0.5 + 0.1; a trajectory that always improves stops at the cap."""
    errors = np.array([[1.0, 3.0], [0.5, 2.0], [0.4, 1.5], [0.6, 1.4]])
    q, stop = optimal_stopping(errors)
    np.testing.assert_allclose(q, [[0.6, 1.6], [0.1, 0.6], [-0.2, 0.1]])
    assert stop.tolist() == [2, 3]
    myopic, stop = optimal_stopping(errors, gamma=0.0)  # the next step's gain alone
    np.testing.assert_allclose(myopic, [[0.5, 1.0], [0.1, 0.5], [-0.2, 0.1]])
    assert stop.tolist() == [2, 3]


def test_the_replay_holds_every_state_of_each_unrolled_patch_and_its_exact_values():
    """`dqn_replay` and `supervised` learn from `policy_patches` trajectories unrolled once: state t+1
    is the unit applied to state t, and the errors are the relative MSE against the clean patch."""
    config = replace(SMOKE, policy_method="supervised", reward="mse", policy_patches=6, max_steps=3)
    model = odezoo.DURR(channels=1, features=4, depth=3, policy_features=2, policy_depth=2, max_steps=3)
    stage = _ReplayPolicyStage(model, config)
    stage.fill(_training_images(config)["policy"])
    assert stage.states.shape == (6, 4, 16, 16, 1) and stage.x0.shape == (6, 16, 16, 1)
    np.testing.assert_array_equal(stage.states[:, 0], stage.x0)
    np.testing.assert_allclose(stage.states[:, 2], model.unit(stage.states[:, 1], stage.x0), atol=1e-5)
    np.testing.assert_allclose(stage.errors[:, 0], 1.0, rtol=1e-5)  # MSE(x_0) / MSE(x_0)
    np.testing.assert_allclose(stage.exact, optimal_stopping(stage.errors.T)[0].T, rtol=1e-5)


@pytest.mark.slow
def test_both_stages_run_write_a_loadable_preset_and_resume(tmp_path):
    summary = train(SMOKE, tmp_path / "once")
    folder = tmp_path / "once" / "durr_denoise_gray"
    meta = json.loads((folder / "metadata.json").read_text())
    assert [(m["sigma"], m["split"], m["num_examples"]) for m in meta["metrics"]] == [
        (25.0, "test", 2), (65.0, "test", 2),
    ]  # fmt: skip
    assert [r["stage"] for r in meta["history"]] == ["unit", "policy", "policy"]
    assert meta["history"][1]["epsilon"] == 1.0 and meta["history"][2]["epsilon"] == pytest.approx(0.05)
    assert 0 <= summary["mean_steps_25"] <= 3 and np.isfinite(summary["psnr_65"])
    model = odezoo.load(folder)
    assert model.num_steps == 2 and model.max_steps == 3

    def stop_after_the_first_epoch(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(SMOKE, tmp_path / "twice", callbacks=[stop_after_the_first_epoch])
    resumed = train(SMOKE, tmp_path / "twice")  # stage 2 starts afresh either way: the same weights
    assert resumed["psnr_25"] == pytest.approx(summary["psnr_25"], abs=1e-4)
    again = odezoo.load(tmp_path / "twice" / "durr_denoise_gray")
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)

    policy_only = replace(SMOKE, unit_from=str(folder), unit_epochs=0, seed=1)  # another policy, same unit
    train(policy_only, tmp_path / "policy")
    other = odezoo.load(tmp_path / "policy" / "durr_denoise_gray_seed1")
    for a, b in zip(model.unit.get_weights(), other.unit.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.policy.get_weights()[0], other.policy.get_weights()[0])
    with pytest.raises(
        OdezooError, match=re.escape(f"`unit_from` {str(folder)!r} has a unit of another shape")
    ):
        train(replace(policy_only, features=8), tmp_path / "misfit")
    assert not (tmp_path / "misfit").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, split",
    # the second is the published denoiser's method and split
    [
        ("supervised", {}),
        ("dqn_replay", {"policy_every": DENOISE.policy_every, "policy_region": DENOISE.policy_region}),
    ],
)
def test_the_replay_policy_stages_train_on_relative_rewards_and_write_a_tiled_preset(tmp_path, method, split):
    config = replace(
        SMOKE, policy_method=method, reward="mse", policy_tile=16, policy_epochs=1, policy_patches=8,
        policy_batch_size=4, **split,
    )  # fmt: skip
    train(config, tmp_path)
    meta = json.loads((tmp_path / "durr_denoise_gray" / "metadata.json").read_text())
    record = meta["history"][-1]
    assert record["stage"] == "policy" and 0 <= record["optimal_stop_step"] <= SMOKE.max_steps
    assert 0 <= record["optimal_return_mse"] <= 1  # a fraction of the degraded patch's MSE
    assert odezoo.load(tmp_path / "durr_denoise_gray").policy_tile == 16
