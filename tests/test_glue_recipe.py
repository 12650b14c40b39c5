"""The GLUE recipe end to end on `tfds.testing.mock_data`: a tiny masked-LM MacaronBert preset with its
tokenizer fine-tuned, resumed, and the preset it writes loaded and evaluated by `odezoo eval`."""

import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("sacremoses")
pytest.importorskip("sklearn")

import tensorflow_datasets as tfds  # noqa: E402
from test_cli import fails, run  # noqa: E402
from test_glue import tiny_preset  # noqa: E402

import odezoo  # noqa: E402
from odezoo.data.glue import glue_task  # noqa: E402
from odezoo.recipes import RECIPES  # noqa: E402
from odezoo.recipes.macaron import glue  # noqa: E402

RECIPES_OF_GLUE = {
    name: config
    for name, (train, config) in RECIPES.items()
    if train is glue.train and glue_task(config.task).dataset.startswith("glue/")
}  # the dictionary-tag recipes: tests/test_masked_lm.py


@pytest.mark.parametrize("recipe", ["macaron_bert_base_glue_rte", "macaron_bert_base_glue_cola"])
def test_a_base_that_is_no_preset_says_how_to_get_one_before_writing(recipe, capsys, tmp_path, monkeypatch):
    """The GLUE recipes' default base, `macaron_bert_base`, is the folder the user converts from the
    authors' checkpoint: its absence is one line that says how to convert it or what to pass instead,
    before the workdir is created."""
    monkeypatch.chdir(tmp_path)  # no folder macaron_bert_base here
    line = fails(capsys, "train", recipe, "--workdir", tmp_path / "run")
    assert line.startswith("odezoo train: error: `base` 'macaron_bert_base' is no preset (`odezoo list`)")
    assert "`odezoo convert fairseq checkpoint_pretrained.pt --dict data-bin/bert_corpus/dict.txt" in line
    assert "--out macaron_bert_base`" in line and "--set base=PRESET_OR_FOLDER" in line
    assert "macaron_bert_small_dictionary_en" in line and "Unknown preset" not in line
    assert not (tmp_path / "run").exists()
    line = fails(capsys, "train", recipe, "--set", "base=./nowhere", "--workdir", tmp_path / "run")
    assert "`base` './nowhere' is no preset" in line and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_mrpc_recipe_on_mock_data_writes_a_preset_that_evaluates_and_resumes(tmp_path, capsys):
    """MRPC (pairs, symmetric, one binary logit): the encoder weights move from the base's, the head
    is new; a second run with one more epoch resumes from the first's checkpoint; the preset loads and
    `odezoo eval` reproduces the metrics it records."""
    base = tiny_preset(tmp_path / "tiny_bert", tmp_path)
    config = replace(glue.MRPC, base=str(base), epochs=1, batch_size=4, limit=6, max_positions=12)
    with tfds.testing.mock_data(num_examples=6):
        summary = glue.train(config, tmp_path / "run")
        first = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
        summary = glue.train(replace(config, epochs=2), tmp_path / "run")
        history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
        assert [h["epoch"] for h in history] == [1, 2] and history[0] == first[0]
        assert set(summary["validation"]) == {"f1", "accuracy"}

        folder = tmp_path / "run" / "tiny_bert_glue_mrpc"
        assert summary["preset_dir"] == str(folder)
        model = odezoo.load(folder)
        assert model.TASK == "text_classification" and model.num_classes == 1
        encoder = odezoo.load(base)
        moved = [
            not np.allclose(w, encoder.get_layer("encoder_layer_0").get_weights()[i])
            for i, w in enumerate(model.get_layer("encoder_layer_0").get_weights())
        ]
        assert any(moved)
        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["dataset"] == "glue/mrpc" and metadata["recipe"] == "macaron_bert_base_glue_mrpc"
        capsys.readouterr()  # the training's log
        code, out, _ = run(capsys, "eval", folder, "--limit", 6)
        assert code == 0
        result = json.loads(out)
        recorded = {m["metric"]: m["value"] for m in metadata["metrics"]}
        assert result["f1"] == pytest.approx(recorded["f1"]) and result["split"] == "validation"
        assert model.task.headline(metadata) == f"{recorded['f1']:.4f} f1 (glue/mrpc validation)"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(set(RECIPES_OF_GLUE) - {"macaron_bert_base_glue_mrpc"}))
def test_every_glue_recipe_runs_on_mock_data_from_the_command_line(recipe, tmp_path, capsys):
    """`odezoo train <recipe> --set base=FOLDER ...`: one epoch on 8 mock examples, then the preset's
    metrics are the task's, on its validation split(s) (MNLI: both, the recipe's first)."""
    config = RECIPES_OF_GLUE[recipe]
    base = tiny_preset(tmp_path / "tiny_bert", tmp_path)
    settings = {"base": base, "epochs": 1, "batch_size": 4, "limit": 8, "max_positions": 12}
    argv = ["train", recipe, *(f"--set={k}={v}" for k, v in settings.items()), "--workdir", tmp_path / "run"]
    with tfds.testing.mock_data(num_examples=8):
        code, out, err = run(capsys, *argv)
    assert code == 0, err
    summary = json.loads(out[out.index("{\n") :])
    task = glue_task(config.task)
    splits = [s for s in summary if s != "preset_dir"]
    assert splits[0] == (config.validation or task.validation[0])
    assert sorted(splits) == sorted(task.validation)
    assert all(set(summary[s]) == set(task.metrics) for s in splits)
    metadata = json.loads((tmp_path / "run" / summary["preset_dir"] / "metadata.json").read_text())
    assert metadata["recipe"] == recipe and metadata["metrics"][0]["metric"] == task.metrics[0]
