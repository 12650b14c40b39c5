"""PDE-Net recipes, evaluation, CLI and export of the one-step map (issue 4)."""

import dataclasses
import json

import numpy as np
import pytest

from odezoo import cli
from odezoo.errors import OdezooError
from odezoo.recipes import RECIPES
from odezoo.recipes.pde_net import BURGERS, LINEAR_CD, train

TINY = dict(batch=2, maxiter=3, eval_trajectories=2, eval_times="0.03")


class Stop(Exception):
    pass


def test_recipes_keep_the_official_schedules():
    assert RECIPES["pde_net2_burgers2d"][1].block_list() == [0, 1, 2, 3, 4, 5, 6, 9, 12, 15, 18]
    assert RECIPES["pde_net2_cdr"][1].block_list() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 9]
    assert LINEAR_CD.block_list() == list(range(21)) and LINEAR_CD.optimizer == "lbfgs"
    assert BURGERS.optimizer == "bfgs" and BURGERS.maxiter == 2000 and BURGERS.acc == 2


@pytest.mark.slow
def test_interrupted_run_resumes_at_the_next_stage_and_writes_a_preset(tmp_path):
    config = dataclasses.replace(BURGERS, blocks="0,1,2", **TINY)

    def stop_after_first(record):
        if record["stage"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train(config, tmp_path, callbacks=[stop_after_first])
    first = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert first["stage"] == 1
    seen = []
    result = train(config, tmp_path, callbacks=[seen.append])
    assert [r["stage"] for r in seen] == [2, 3]  # stage 1 was not run again
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert history[0] == first["history"][0] and [h["block"] for h in history] == [0, 1, 2]
    folder = tmp_path / "pde_net2_burgers2d"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert (
        metadata["equation"] == "burgers2d" and "t=0.03" in metadata["pde_report"]["rollout_relative_error"]
    )
    assert "## Learned equation" in (folder / "README.md").read_text()
    assert (folder / "rollout.png").stat().st_size > 1000 and "rollout.png" in metadata["files"]
    assert result["preset_dir"] == str(folder)


@pytest.mark.slow
def test_adam_and_v1_stages_lower_the_loss(tmp_path):
    config = dataclasses.replace(LINEAR_CD, blocks="0,1", **{**TINY, "maxiter": 5, "mesh": 5})
    seen = []
    train(config, tmp_path / "v1", callbacks=[seen.append])
    assert all(r["loss"] < r["loss_before"] for r in seen)
    config = dataclasses.replace(BURGERS, blocks="0", optimizer="adam", learning_rate=1e-3, **TINY)
    seen = []
    train(config, tmp_path / "adam", callbacks=[seen.append])
    assert seen[0]["loss"] < seen[0]["loss_before"]


@pytest.mark.slow
def test_a_float32_run_trains_in_float32_and_records_coefficient_errors_per_stage(tmp_path):
    """`dtype=float32` reaches the weights, the loss and the preset; every stage record carries the
    coefficient errors of the equation learned so far, which move as the stage trains."""
    import odezoo

    config = dataclasses.replace(BURGERS, blocks="0,1", dtype="float32", **TINY)
    seen = []
    result = train(config, tmp_path, callbacks=[seen.append])
    assert [r["block"] for r in seen] == [0, 1]
    assert all(r["loss"] < r["loss_before"] for r in seen)
    terms = {"u: u*u_x", "u: u_xx", "v: v*v_y", "v: v_yy"}
    assert terms <= set(seen[0]["relative_errors"]) and "value" in seen[1]["largest_spurious"]
    assert set(seen[1]["learned"]) == {"u", "v"}
    assert seen[0]["relative_errors"] != seen[1]["relative_errors"]
    model = odezoo.load(result["preset_dir"])
    assert {v.dtype for v in model.weights} == {"float32"} and model.inputs[0].dtype == "float32"


def test_bad_settings_are_refused_before_the_workdir_is_written(tmp_path):
    with pytest.raises(OdezooError, match="comma-separated integers"):
        train(dataclasses.replace(BURGERS, blocks="0,one"), tmp_path / "run")
    with pytest.raises(OdezooError, match="Unknown optimizer 'newton'"):
        train(dataclasses.replace(BURGERS, optimizer="newton"), tmp_path / "run")
    with pytest.raises(OdezooError, match="`dtype` must be 'float64' or 'float32'. Received: 'float16'"):
        train(dataclasses.replace(BURGERS, dtype="float16"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_workdir_of_other_settings_is_refused(tmp_path):
    """The PDE recipe shares the image recipes' guard: resuming would mix two runs' stages."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "state.json").write_text('{"stage": 1, "weights": "x", "history": []}')
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(BURGERS)))
    with pytest.raises(OdezooError, match=r"other settings \(maxiter 2000 -> 3\); resuming would mix"):
        train(dataclasses.replace(BURGERS, maxiter=3), tmp_path)


def test_simulate_command_writes_trajectories(tmp_path, capsys):
    assert cli.main(["simulate", "heat", "--n", "2", "--steps", "3", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    with np.load(out["path"]) as f:
        assert f["u"].shape == (2, 4, 32, 32, 1)
    assert cli.main(["simulate", "burgers", "--out", str(tmp_path)]) == 2
    assert "Unknown equation 'burgers'" in capsys.readouterr().err
    assert cli.main(["simulate", "heat", "--n", "0", "--out", str(tmp_path)]) == 2
    assert "--n must be >= 1" in capsys.readouterr().err
    assert cli.main(["simulate", "heat", "--n", "1", "--steps", "1", "--out", out["path"]]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    (tmp_path / "heat_seed7.npz").write_text("my own notes")
    assert (
        cli.main(["simulate", "heat", "--n", "1", "--steps", "1", "--seed", "7", "--out", str(tmp_path)]) == 2
    )
    assert f"Output {tmp_path / 'heat_seed7.npz'} exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "heat_seed7.npz").read_text() == "my own notes"


def test_pde_export_is_float32_and_close_to_the_float64_model(tmp_path):
    from odezoo.data.pde import simulate
    from odezoo.export import export_model
    from odezoo.models.pde_net import PDENet2
    from odezoo.models.pde_net.pde_net_task import float32_copy

    model = PDENet2(channels=("u",), grid=32)
    sample = simulate("heat", batch=4, steps=0, seed=1, noise=0.0).u[:, 0].astype("float32")
    report = export_model(float32_copy(model), tmp_path, "saved_model", sample=sample, reference=model)
    assert report["compared_with"] == "float64 Keras model" and report["top1_agreement"] is None
    assert {w.dtype for w in model.weights} == {"float64"}
    assert {w.dtype for w in float32_copy(model).weights} == {"float32"}


def test_pde_presets_refuse_image_commands_with_a_pointer(capsys):
    assert cli.main(["predict", "pde_net2_heat"]) == 2
    assert "is a PDE model, not an image classifier: `odezoo eval pde_net2_heat`" in capsys.readouterr().err
    assert cli.main(["eval", "pde_net2_heat", "--trajectories", "0"]) == 2
    assert "--trajectories must be >= 1" in capsys.readouterr().err
    assert cli.main(["export", "pde_net2_heat", "--format", "tflite", "--quantize", "int8"]) == 2
    err = capsys.readouterr().err  # refused before converting, naming what works
    assert "cannot be exported to tflite+int8: 8-bit activations cannot hold a field" in err
    assert err.strip().endswith("Quantisations that work: dynamic, float16 (or none: --format tflite alone).")
