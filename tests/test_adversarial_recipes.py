"""Adversarial-training recipes (issue 3): configs, a run on mock data, resumption, MirroredStrategy."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from odezoo import OdezooError
from odezoo.models.convnets import SmallCNN
from odezoo.models.convnets.convnets import ARCHITECTURES
from odezoo.recipes import RECIPES
from odezoo.recipes.convnets import CIFAR10, CONFIGS, FASHION_MNIST, build_model, train
from odezoo.training import learning_rate_schedule

SMOKE = replace(FASHION_MNIST["yopo5_3"], m=2, n=1, epochs=1, batch_size=4, limit=8)


def test_recipes_cover_the_paper_table_and_the_fashion_mnist_set():
    names = {config.preset_name() for config in CONFIGS}
    assert {
        "wrn34_10_natural_cifar10",
        "wrn34_10_pgd10_cifar10",
        "wrn34_10_free8_cifar10",
        "wrn34_10_yopo5_3_cifar10",
        "wrn34_10_yopo3_5_cifar10",
        "preact_resnet18_yopo5_3_cifar10",
        "preact_resnet18_trades_yopo3_4_cifar10",
        "small_cnn_yopo5_3_fashion_mnist",
        "small_cnn_pgd10_fashion_mnist",
    } <= names
    assert names <= set(RECIPES)
    for config in CONFIGS:
        config.attack()  # a valid budget
        assert config.architecture in ARCHITECTURES
    yopo, pgd = CIFAR10["wrn34_10_yopo5_3"], CIFAR10["wrn34_10_pgd10"]
    # the official code: lr 0.1 * 4 / m for YOPO on WRN, eps 8/255, step 2/255, 36 vs 105 epochs
    assert yopo.learning_rate == pytest.approx(0.08) and (yopo.eps, yopo.step) == (8 / 255, 2 / 255)
    assert (yopo.epochs, pgd.epochs, pgd.weight_decay, pgd.milestones) == (36, 105, 2e-4, "75,90,100")
    trades = CIFAR10["preact_resnet18_trades_yopo3_4"]
    assert (trades.m, trades.n, trades.eps, trades.step, trades.learning_rate, trades.beta) == (
        3, 4, 0.031, 0.007, 0.2, 1.0
    )  # fmt: skip
    fmnist_yopo = FASHION_MNIST["yopo5_3"]  # the stable setting of bench/yopo_stability.py (issue 13)
    assert fmnist_yopo.learning_rate == pytest.approx(FASHION_MNIST["pgd"].learning_rate * 4 / 5)
    assert (fmnist_yopo.clipnorm, fmnist_yopo.first_layer_rule, fmnist_yopo.epochs) == (10, "official", 8)


def test_milestone_schedule_divides_by_ten_at_each_milestone():
    schedule = learning_rate_schedule(0.1, epochs=10, steps_per_epoch=4, milestones=(5, 8))
    rates = [float(schedule(step)) for step in (0, 19, 20, 31, 32, 39)]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    cosine = learning_rate_schedule(0.1, epochs=10, steps_per_epoch=4)
    assert float(cosine(0)) == pytest.approx(0.1) and float(cosine(40)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("milestones", [(), (5, 8)])
def test_warm_up_ramps_the_schedule_linearly_then_leaves_it_unchanged(milestones):
    plain = learning_rate_schedule(0.1, epochs=10, steps_per_epoch=4, milestones=milestones)
    warm = learning_rate_schedule(0.1, epochs=10, steps_per_epoch=4, milestones=milestones, warmup_epochs=2)
    steps = [0, 3, 7, 8, 21, 33]
    ramp = [1 / 8, 4 / 8, 1, 1, 1, 1]
    np.testing.assert_allclose(
        [float(warm(s)) for s in steps], [r * float(plain(s)) for r, s in zip(ramp, steps)]
    )
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(warm))
    assert float(again(3)) == pytest.approx(float(warm(3)))


class RecordRule(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rule = self.model.first_layer_rule  # the AdversarialTrainer's
        self.clipnorm = self.model.clipnorm
        self.schedule = self.model.optimizer._learning_rate  # noqa: SLF001 (what the recipe built)


def test_yopo_recipe_on_mock_data_writes_a_robust_preset(tmp_path):
    """A first-layer rule, clipping and warm-up other than the recipe's, set as recipe settings, reach
    the trainer and the card."""
    record = RecordRule()
    with tfds.testing.mock_data(num_examples=8):
        summary = train(
            replace(SMOKE, first_layer_rule="official_torch2", clipnorm=2.0, warmup_epochs=0.5),
            tmp_path,
            callbacks=[record],
        )
    assert record.rule == "official_torch2" and record.clipnorm == 2.0
    assert record.schedule.warmup_steps == 1  # half of the 2 steps of the epoch
    folder = tmp_path / "small_cnn_yopo2_1_fashion_mnist"
    assert summary["preset_dir"] == str(folder)
    assert summary["train_seconds"] > 0 and summary["train_cpu_seconds"] > 0
    model = SmallCNN.from_pretrained(folder)
    assert model.outputs[0].shape[-1] == 10
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["train_command"] == (
        "odezoo train small_cnn_yopo5_3_fashion_mnist --set m=2 --set n=1 "
        "--set first_layer_rule=official_torch2 --set epochs=1 --set batch_size=4 --set warmup_epochs=0.5 "
        "--set clipnorm=2.0 --set limit=8 --workdir DIR"
    )
    described = "YOPO-2-1 adversarially trained (eps 0.1, step 0.01, first-layer rule official_torch2)"
    assert described in meta["description"]
    robust = {m["metric"]: m for m in meta["metrics"]}
    assert set(robust) == {"accuracy", "robust_accuracy"}
    assert robust["robust_accuracy"]["attack"].startswith("PGD-40, L-inf eps=0.1, step=0.01")
    assert robust["robust_accuracy"]["command"] == "odezoo eval small_cnn_yopo2_1_fashion_mnist --attack pgd"
    assert meta["train_seconds"] == pytest.approx(sum(h["seconds"] for h in meta["history"]))


def test_bad_recipe_settings_are_refused(tmp_path):
    with pytest.raises(OdezooError, match="Unknown method 'madry'"):
        train(replace(SMOKE, method="madry"), tmp_path)
    with pytest.raises(OdezooError, match=r"step size must be in \(0, eps\]"):
        train(replace(SMOKE, step=0.5), tmp_path)
    with pytest.raises(OdezooError, match="Unknown architecture 'vgg'"):
        train(replace(SMOKE, architecture="vgg"), tmp_path)
    with pytest.raises(OdezooError, match="Unknown first_layer_rule 'torch'"):
        train(replace(SMOKE, first_layer_rule="torch"), tmp_path)
    with pytest.raises(OdezooError, match="'yopo' only. Received: method='pgd', first_layer_rule='official'"):
        train(replace(SMOKE, method="pgd", first_layer_rule="official"), tmp_path)
    with pytest.raises(OdezooError, match="`warmup_epochs` must be >= 0. Received: warmup_epochs=-1"):
        train(replace(SMOKE, warmup_epochs=-1), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def _run(script, tmp_path, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_resume_continues_the_history_and_the_train_time(tmp_path):
    with tfds.testing.mock_data(num_examples=8):
        train(SMOKE, tmp_path)
        first = json.loads((tmp_path / "metrics.json").read_text())
        summary = train(replace(SMOKE, epochs=2), tmp_path)
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first["history"][0]
    assert summary["train_seconds"] == pytest.approx(history[0]["seconds"] + history[1]["seconds"])
    with pytest.raises(OdezooError, match=r"holds checkpoints of a run with other settings \(m 2 -> 3\)"):
        train(replace(SMOKE, m=3), tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["m"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, clipnorm", [("natural", None), ("yopo", None), ("trades_yopo", None), ("yopo", 0.05)]
)
def test_an_update_under_mirrored_strategy_on_two_cpus_equals_one_device(tmp_path, method, clipnorm):
    """Two replicas each see half the batch; their gradients are summed, so each scales its loss by
    1/2 and the update equals one device's on the whole batch (eps ~ 0 makes the random start moot);
    `clipnorm` clips the summed gradient, not each replica's half (0.05 clips both here)."""
    out = _run(
        f"""
    import numpy as np, keras, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from odezoo.adversarial import AdversarialTrainer, Attack
    from odezoo.training import make_strategy

    def update(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((8, 8, 1))
            x = keras.layers.ReLU(name="relu1")(keras.layers.Conv2D(4, 3, name="conv1")(inputs))
            model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
            trainer = AdversarialTrainer(model, method="{method}", attack=Attack(1e-7, 1e-7, 1, m=2, n=2),
                                         first_layer="relu1", clipnorm={clipnorm})
            trainer.compile(optimizer=keras.optimizers.SGD(0.5))
        rng = np.random.default_rng(0)
        x, y = rng.uniform(0.2, 0.8, (8, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 8)
        trainer.fit(tf.data.Dataset.from_tensors((x, y)), epochs=1, verbose=0)
        return [w.copy() for w in model.get_weights()]

    mirrored = make_strategy("mirrored")
    print("replicas", mirrored.num_replicas_in_sync)
    one, two = update(tf.distribute.get_strategy()), update(mirrored)
    print("max diff", max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)))
    """,
        tmp_path,
        TF_ENABLE_ONEDNN_OPTS="0",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "replicas 2" in out.stdout
    assert float(out.stdout.split("max diff")[1]) < 1e-5, out.stdout


def test_wrn34_10_builds_from_its_config_name():
    model = build_model(CIFAR10["wrn34_10_yopo5_3"])
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert type(model).__name__ == "WideResNet" and trainable == 46_160_474
    assert model.name == "wrn34_10_yopo5_3_cifar10" and model.get_config()["widen_factor"] == 10


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["preact_resnet18_trades_yopo3_4", "preact_resnet18_yopo5_3"])
def test_cifar10_recipes_run_on_mock_cifar(tmp_path, recipe):
    """The paper's PreAct-18 CIFAR-10 recipes, shortened to two steps of batch 4 (WRN-34-10 is too
    slow for a CPU test): TFDS pipeline, milestones, the method and the PGD-20 evaluation."""
    config = replace(CIFAR10[recipe], epochs=1, batch_size=4, limit=8, steps=1, n=1)
    with tfds.testing.mock_data(num_examples=8):
        summary = train(config, tmp_path)
    meta = json.loads((Path(summary["preset_dir"]) / "metadata.json").read_text())
    attack = meta["metrics"][1]["attack"]
    assert meta["dataset"] == "cifar10" and attack.startswith("PGD-20, L-inf eps=0.0313725, step=0.00784314")
    assert meta["train_command"].startswith(f"odezoo train {recipe}_cifar10 --set")
