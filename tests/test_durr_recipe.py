"""DURR recipe (issue 11): names, settings checked first, the per-level step table, and a tiny run of
both stages that writes a loadable preset and resumes where it was stopped (slow)."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

import odezoo
from odezoo import OdezooError
from odezoo.recipes import RECIPES
from odezoo.recipes.durr import DEBLOCK, DENOISE, _UnitStage, train

SMOKE = replace(
    DENOISE, features=4, depth=3, policy_features=2, policy_depth=2, patch_size=16, batch_size=4,
    steps_per_epoch=3, unit_steps=2, unit_epochs=1, policy_epochs=2, max_steps=3, replay_size=50,
    target_update=2, limit=2, eval_levels="25,65", step_table="",
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
    ],
)
def test_bad_settings_are_refused_before_the_workdir_is_written(tmp_path, change, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        train(replace(SMOKE, **change), tmp_path / "run")
    assert not (tmp_path / "run").exists()


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
