"""Mean-field ResNet recipe (issue 12): names, settings checked first, a run on Fashion-MNIST that
records accuracy under random block orders with the command that repeats it."""

import json
from dataclasses import replace

import pytest

import odezoo
from odezoo import OdezooError
from odezoo.models.mean_field import mean_field_eval
from odezoo.recipes import RECIPES
from odezoo.recipes.mean_field import MEAN_FIELD, REORDERED, STANDARD, train

SMOKE = replace(REORDERED, num_blocks=2, width=3, channels=4, epochs=1, batch_size=4, limit=8, orders=2)


def test_recipes_are_named_after_their_presets():
    assert {c.preset_name() for c in (MEAN_FIELD, REORDERED, STANDARD)} == {
        "mean_field_resnet8_fashion_mnist",
        "mean_field_resnet8_reordered_fashion_mnist",
        "standard_resnet8_fashion_mnist",
    }
    assert all(RECIPES[c.preset_name()][1] == c for c in (MEAN_FIELD, REORDERED, STANDARD))
    assert replace(MEAN_FIELD, num_blocks=16, width=32, seed=2).preset_name() == (
        "mean_field_resnet16_w32_fashion_mnist_seed2"
    )
    assert replace(STANDARD, variant="dense").preset_name() == "standard_resnet8_dense_fashion_mnist"


def test_a_run_records_accuracy_under_random_block_orders_and_writes_a_loadable_preset(tmp_path):
    summary = train(SMOKE, tmp_path)
    folder = tmp_path / "mean_field_resnet2_w3_reordered_fashion_mnist"
    meta = json.loads((folder / "metadata.json").read_text())
    assert {m["metric"] for m in meta["metrics"]} == {"accuracy", "loss"}  # what `odezoo eval` repeats
    orders = meta["block_orders"]
    assert orders["command"] == (
        "odezoo block-orders mean_field_resnet2_w3_reordered_fashion_mnist --orders 2"
    )
    assert orders["random_order_min"] == summary["accuracy_random_order_min"] <= orders["random_order_mean"]
    assert orders["random_orders"] == mean_field_eval.random_orders(2, 2, seed=0) == [[1, 0], [1, 0]]
    assert orders["num_examples"] == 8 and len(orders["random_order_accuracy"]) == 2
    model = odezoo.load(folder)
    assert model.shuffle_blocks and model.num_blocks == 2 and model.scaling == "mean_field"


def test_a_validation_run_reports_on_held_out_training_images_only(tmp_path):
    summary = train(replace(SMOKE, validation=4, orders=0), tmp_path)
    folder = tmp_path / "mean_field_resnet2_w3_reordered_fashion_mnist_holdout"
    meta = json.loads((folder / "metadata.json").read_text())
    assert {(m["split"], m["metric"], m["num_examples"]) for m in meta["metrics"]} == {
        ("validation", "accuracy", 4), ("validation", "loss", 4),
    }  # fmt: skip
    assert set(summary) == {"validation_accuracy", "validation_loss", "preset_dir"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"scaling": "1/L"}, "`scaling` must be one of ('mean_field', 'standard'). Received: scaling='1/L'"),
        ({"variant": "mlp"}, "`variant` must be one of ('conv', 'dense'). Received: variant='mlp'"),
        ({"num_blocks": 0}, "`num_blocks` must be >= 1. Received: num_blocks=0"),
        ({"orders": -1}, "`orders` must be >= 0. Received: orders=-1"),
    ],
)
def test_bad_settings_are_refused_before_the_workdir_is_written(tmp_path, change, message):
    with pytest.raises(OdezooError) as error:
        train(replace(SMOKE, **change), tmp_path / "run")
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()
