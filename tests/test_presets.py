"""The published presets: registry, bundled folders, cards and README agree; the weights do what
the card says; golden outputs guard against regressions; fine-tuning works."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import odezoo
from odezoo.preset_folder import read_metadata, sha256_of
from odezoo.presets import bundled_folder, get_preset, list_presets
from odezoo.tasks.image_classification import bundled_sample
from odezoo.zoo import preset_class, preset_table, preset_task

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = list_presets()


def test_listing_reads_the_registry_only():
    """`odezoo list` / `odezoo.list_presets()` start no TensorFlow (and no Keras)."""
    code = (
        "import sys, odezoo; odezoo.list_presets(); print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
    listed = subprocess.run(
        [sys.executable, "-m", "odezoo.cli", "list"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert listed.returncode == 0 and listed.stdout.split() == NAMES


def test_names():
    assert NAMES, "no preset registered"
    for name in NAMES:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name)
        preset = get_preset(name)
        # restorers are named by what they restore: durr_denoise_gray, ...
        if preset_task(name).name == "image_restoration":
            assert re.fullmatch(r"[a-z0-9]+_(denoise|deblock)_[a-z0-9_]+", name), name
        else:
            assert name.endswith(preset.dataset) or preset.dataset in name


@pytest.mark.parametrize("name", NAMES)
def test_registry_matches_the_bundled_folder(name):
    preset = get_preset(name)
    folder = bundled_folder(name)
    assert folder is not None and folder.parent.name == "weights"
    meta = read_metadata(folder)
    assert preset.sha256 == meta["weights_sha256"] == sha256_of(folder / "model.weights.h5")
    listed = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != "metadata.json"}
    assert set(meta["files"]) == listed and all(sha256_of(folder / f) == h for f, h in meta["files"].items())
    assert meta["preset"] == name and meta["dataset"] == preset.dataset
    assert meta["task"] == preset_task(name).name
    assert all(m["command"].startswith(f"odezoo eval {name}") for m in meta["metrics"])
    model = odezoo.load(name, load_weights=False)
    assert type(model) is preset_class(name) and type(model.task) is type(preset_task(name))


@pytest.mark.parametrize("name", NAMES)
def test_card_quotes_the_metadata(name):
    cards = (ROOT / "MODEL_CARDS.md").read_text()
    section = cards.split(f"\n## {name}\n")[1].split("\n## ")[0]
    quotes = preset_task(name).card_quotes(read_metadata(bundled_folder(name)))
    assert quotes and [q for q in quotes if q not in section] == []


def test_readme_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- presets:begin -->\n")[1].split("<!-- presets:end -->")[0]
    assert block.strip() == preset_table().strip()


@pytest.mark.parametrize("name", NAMES)
def test_golden_outputs(name):
    """The task's golden check: logits of the first bundled images, or one step from a stored field."""
    model = odezoo.load(name)
    actual, expected = model.task.golden(model, np.load(GOLDEN / f"{name}.npz"))
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-4)


# Spot checks slow for the network rather than its task: PGD through RK4's four evaluations per step.
SLOW_SPOT_CHECKS = {"rk4_resnet20_fashion_mnist"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow)
        if preset_task(n).slow_spot_checks or n in SLOW_SPOT_CHECKS
        else n
        for n in NAMES
    ],
)
def test_the_weights_do_what_the_card_says(name):
    """The task's spot checks: classifiers on the bundled test images (clean, and under the card's
    attack), PDE models on a short rollout from fresh trajectories, restorers on the card's photographs
    (slow)."""
    model = odezoo.load(name)
    checks = model.task.spot_checks(model, read_metadata(bundled_folder(name)))
    assert checks and [what for what, ok in checks if not ok] == []


@pytest.mark.parametrize("name", ["lm_resnet20_fashion_mnist", "resnet20_fashion_mnist"])
def test_lm_presets_pad_as_the_official_code_and_refuse_keras_same(name):
    """Retrained with the official symmetric padding (issue 13): they build it, and their weights refuse
    to load into Keras' "same" padding, which would change every stride-2 output silently."""
    assert odezoo.load(name, load_weights=False).padding == "symmetric"
    with pytest.raises(
        odezoo.OdezooError, match=f"The weights of preset '{name}' were trained with padding='symmetric'"
    ):
        odezoo.load(name, padding="same")


def test_fine_tuning_a_new_label_set():
    """Tops / footwear / other from the Fashion-MNIST sample: a new 3-class head learns it."""
    images, labels = bundled_sample(400)
    groups = np.array([0, 2, 0, 0, 0, 1, 0, 1, 2, 1])[labels]  # 0 tops, 1 footwear, 2 trousers + bags
    model = odezoo.load("lm_resnet20_fashion_mnist", num_classes=3)
    model.freeze_trunk()
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(images, groups, epochs=4, batch_size=50, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
    assert np.mean(model.predict(images, verbose=0).argmax(-1) == groups) > 0.9


@pytest.mark.slow
def test_wheel_ships_the_bundled_presets(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("odezoo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for name in NAMES:
        assert f"odezoo/_bundled/{name}/model.weights.h5" in names
    assert "odezoo/data/fashion_mnist_sample.npz" in names
    code = "import odezoo.zoo as z; print(z.resolve('lm_resnet20_fashion_mnist').folder)"
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == str(
        tmp_path / "site" / "odezoo" / "_bundled" / "lm_resnet20_fashion_mnist"
    )
