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
from odezoo.data.images import DATASETS, SAMPLE_FILE
from odezoo.data.pde import simulate
from odezoo.eval import evaluate
from odezoo.presets import get_preset, list_presets, preset_table
from odezoo.pretrained import METADATA_FILE, bundled_folder, read_json, sha256_of

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = list_presets()


def _metrics(name):
    return {m["metric"]: m for m in read_json(bundled_folder(name) / METADATA_FILE)["metrics"]}


CLASSIFIERS = [n for n in NAMES if get_preset(n).dataset in DATASETS]
PDE_MODELS = [n for n in NAMES if n not in CLASSIFIERS]
ROBUST = [n for n in CLASSIFIERS if "robust_accuracy" in _metrics(n)]


def test_names():
    assert NAMES, "no preset registered"
    for name in NAMES:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name)
        assert name.endswith(get_preset(name).dataset) or get_preset(name).dataset in name


@pytest.mark.parametrize("name", NAMES)
def test_registry_matches_the_bundled_folder(name):
    preset = get_preset(name)
    folder = bundled_folder(name)
    assert folder is not None and folder.parent.name == "weights"
    meta = read_json(folder / METADATA_FILE)
    assert preset.sha256 == meta["weights_sha256"] == sha256_of(folder / "model.weights.h5")
    config = read_json(folder / "config.json")["config"]
    assert {k: config[k] for k in preset.config} == preset.config
    assert meta["preset"] == name and meta["dataset"] == preset.dataset
    assert all(m["command"].startswith(f"odezoo eval {name}") for m in meta["metrics"])
    model = odezoo.load(name, load_weights=False)
    assert type(model) is preset.model_cls


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_card_quotes_the_metadata(name):
    cards = (ROOT / "MODEL_CARDS.md").read_text()
    section = cards.split(f"\n## {name}\n")[1].split("\n## ")[0]
    meta = read_json(bundled_folder(name) / METADATA_FILE)
    accuracy = next(m for m in meta["metrics"] if m["metric"] == "accuracy" and m["split"] == "test")
    assert f"{accuracy['value']:.2%}" in section and meta["train_command"] in section


def test_readme_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- presets:begin -->\n")[1].split("<!-- presets:end -->")[0]
    assert block.strip() == preset_table().strip()


def _sample(count=None):
    with np.load(SAMPLE_FILE) as f:
        return f["images"][:count].astype("float32") / 255.0, f["labels"][:count]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_golden_outputs(name):
    golden = np.load(GOLDEN / f"{name}.npz")
    images, _ = _sample(len(golden["logits"]))
    logits = odezoo.load(name).predict(images, verbose=0)
    np.testing.assert_allclose(logits, golden["logits"], rtol=1e-3, atol=1e-4)
    assert list(logits.argmax(-1)) == list(golden["logits"].argmax(-1))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_accuracy_on_the_bundled_sample(name):
    """The 1,000 bundled test images: the weights score close to the card's full-test accuracy."""
    meta = read_json(bundled_folder(name) / METADATA_FILE)
    full = next(m["value"] for m in meta["metrics"] if m["metric"] == "accuracy" and m["split"] == "test")
    result = evaluate(odezoo.load(name), get_preset(name).dataset, split="sample")
    assert result["num_examples"] == 1000
    assert result["accuracy"] >= 0.75 and abs(result["accuracy"] - full) < 0.03


@pytest.mark.parametrize("name", ROBUST)
def test_robust_accuracy_on_bundled_images_matches_the_card(name):
    """The card's attack on 200 bundled test images: robust accuracy within sampling error of the
    card's full-test figure (binomial sd <= 3.5 points at n = 200)."""
    from odezoo.adversarial import robust_evaluate
    from odezoo.eval import ATTACKS

    card = _metrics(name)["robust_accuracy"]
    eps, step, steps = ATTACKS[card["dataset"]]
    assert card["attack"].startswith(f"PGD-{steps}, L-inf eps={eps:g}, step={step:g}")
    result = robust_evaluate(odezoo.load(name), _sample(200), eps=eps, step=step, steps=steps)
    assert abs(result["robust_accuracy"] - card["value"]) < 0.1


@pytest.mark.parametrize("name", PDE_MODELS)
def test_pde_card_quotes_the_metadata(name):
    cards = (ROOT / "MODEL_CARDS.md").read_text()
    section = cards.split(f"\n## {name}\n")[1].split("\n## ")[0]
    meta = read_json(bundled_folder(name) / METADATA_FILE)
    report = meta["pde_report"]
    for t, stats in report["rollout_relative_error"].items():
        assert f"{stats['median']:.2%}" in section, t
    assert f"{report['max_relative_error']:.2%}" in section
    assert f"{abs(report['largest_spurious']['value']):.1e}" in section
    assert meta["train_command"] in section and (bundled_folder(name) / "rollout.png").is_file()


@pytest.mark.parametrize("name", PDE_MODELS)
def test_pde_golden_step(name):
    """One step of the published model from a fixed simulated field, against the stored output."""
    golden = np.load(GOLDEN / f"{name}.npz")
    model = odezoo.load(name)
    np.testing.assert_allclose(model.rollout(golden["u0"], 1)[:, 1], golden["u1"], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", PDE_MODELS)
def test_pde_short_rollout_tracks_fresh_data(name):
    """Ten steps from fresh noise-free trajectories (not the evaluation seed) stay within the card's
    error at t = 1 (errors grow along a rollout)."""
    model = odezoo.load(name)
    at_1 = read_json(bundled_folder(name) / METADATA_FILE)["pde_report"]["rollout_relative_error"]["t=1"]
    data = simulate(get_preset(name).dataset, batch=2, steps=10, seed=123, noise=0.0, start_time=0.0)
    path = model.rollout(data.u[:, 0], 10)
    error = np.sqrt(np.mean((path[:, -1] - data.u[:, -1]) ** 2) / np.var(data.u[:, -1]))
    assert error < at_1["q75"]


def test_fine_tuning_a_new_label_set():
    """Tops / footwear / other from the Fashion-MNIST sample: a new 3-class head learns it."""
    images, labels = _sample(400)
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
    code = "import odezoo.pretrained as p; print(p.resolve('lm_resnet20_fashion_mnist')[0])"
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
