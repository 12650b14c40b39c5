"""Every scheme of `odezoo.models._schemes` through the LM-ResNet recipe (`--set scheme=...`) on mock data:
trains, writes a preset folder that loads; and exports."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import tensorflow_datasets as tfds

from odezoo import LMResNet, OdezooError
from odezoo.export import FORMATS, export_preset
from odezoo.recipes.lm_resnet import CONFIGS, FASHION_MNIST, train

SMOKE = replace(FASHION_MNIST, depth=14, width=4, epochs=1, batch_size=2, limit=4)
IMAGES = np.random.default_rng(0).uniform(0, 1, (3, 28, 28, 1)).astype("float32")


def reproduced(command):
    """The config that `command` (`odezoo train NAME --set K=V ... --workdir DIR`) trains."""
    name, *sets = re.findall(r"^odezoo train (\S+)|--set (\S+)=(\S+)", command)
    base = next(c for c in CONFIGS if c.preset_name() == name[0])
    return base.configure({key: value for _, key, value in sets}, name[0])


@pytest.mark.parametrize(
    "scheme,stage_sharing",
    [
        pytest.param("rk4", True, marks=pytest.mark.slow),
        pytest.param("heun", True, marks=pytest.mark.slow),
        pytest.param("midpoint", True, marks=pytest.mark.slow),
        pytest.param("backward_euler", True, marks=pytest.mark.slow),
        pytest.param("rk4", False, marks=pytest.mark.slow),
    ],
)
def test_recipe_trains_a_scheme_and_its_preset_loads(tmp_path, scheme, stage_sharing):
    """Slow (about a minute each on 2 cores); the harness (tests/models/test_harness.py) trains a step of
    an RK4 network in the default run."""
    config = replace(SMOKE, scheme=scheme, stage_sharing=stage_sharing, depth=14 if stage_sharing else 32)
    with tfds.testing.mock_data(num_examples=8):
        summary = train(config, tmp_path)
    folder = tmp_path / config.preset_name()
    assert summary["preset_dir"] == str(folder)
    model = LMResNet.from_pretrained(folder)
    assert (model.scheme, model.stage_sharing) == (scheme, stage_sharing)
    assert any(layer.name.endswith(f"_{scheme}") for layer in model.layers)
    again = LMResNet.from_pretrained(folder)
    np.testing.assert_array_equal(np.asarray(model(IMAGES)), np.asarray(again(IMAGES)))
    meta = json.loads((folder / "metadata.json").read_text())
    assert reproduced(meta["train_command"]) == config and "steps" in meta["description"]
    assert np.isfinite(json.loads((tmp_path / "metrics.json").read_text())["history"][0]["loss"])


def test_preset_names_say_the_scheme():
    assert FASHION_MNIST.preset_name() == "lm_resnet20_fashion_mnist"
    assert replace(FASHION_MNIST, scheme="euler").preset_name() == "resnet20_fashion_mnist"
    assert replace(FASHION_MNIST, scheme="rk4").preset_name() == "rk4_resnet20_fashion_mnist"
    stacked = replace(FASHION_MNIST, scheme="heun", stage_sharing=False)
    assert stacked.preset_name() == "heun_resnet20_fashion_mnist_stacked"


def test_a_layout_the_scheme_cannot_take_is_refused_before_the_workdir_is_written(tmp_path):
    config = replace(SMOKE, depth=20, scheme="rk4", stage_sharing=False)
    with pytest.raises(OdezooError, match=re.escape("Received: depth=20 (3 blocks per stage)")):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.export
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_runge_kutta_network_exports(tmp_path, fmt):
    model = LMResNet(depth=14, width=4, num_classes=10, image_shape=(28, 28, 1), scheme="rk4")
    folder = model.save_pretrained(tmp_path / "rk4", metadata={"preset": "rk4"})
    report = export_preset(str(folder), fmt, output_dir=tmp_path / "out")
    assert report["top1_agreement"] == 1.0
