"""The training recipe on mock data: two steps, resumption after kill -9, MirroredStrategy."""

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from odezoo import LMResNet, OdezooError
from odezoo.recipes import RECIPES, get_recipe
from odezoo.recipes.lm_resnet import FASHION_MNIST, train
from odezoo.training import EpochCheckpoint, make_strategy

SMOKE = replace(FASHION_MNIST, depth=8, width=4, epochs=1, batch_size=2, limit=4)


def test_recipe_two_steps_writes_a_loadable_preset(tmp_path):
    with tfds.testing.mock_data(num_examples=8):
        summary = train(SMOKE, tmp_path)
    folder = tmp_path / "lm_resnet8_fashion_mnist"
    assert summary["preset_dir"] == str(folder)
    model = LMResNet.from_pretrained(folder)
    assert model.outputs[0].shape[-1] == 10
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["recipe"] == "lm_resnet20_fashion_mnist" and meta["recipe_config"]["depth"] == 8
    assert meta["train_command"].startswith("odezoo train lm_resnet20_fashion_mnist --set depth=8")
    assert [m["metric"] for m in meta["metrics"]] == ["accuracy", "loss"]
    assert json.loads((tmp_path / "config.json").read_text())["limit"] == 4
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert len(history) == 1 and np.isfinite(history[0]["loss"])


def test_recipes_are_named_after_their_preset_and_old_names_still_work():
    for name, (_, config) in RECIPES.items():
        assert config.preset_name() == name
        assert get_recipe(name)[0].__module__.startswith("odezoo.recipes.")
    assert get_recipe("lm_resnet_fashion_mnist") == RECIPES["lm_resnet20_fashion_mnist"]
    assert get_recipe("lm_resnet_cifar10")[1].depth == 56
    assert RECIPES["resnet20_fashion_mnist"][1].scheme == "euler"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"lr_schedule": "linear"}, "`lr_schedule` must be 'cosine' or 'step'. Received: lr_schedule="),
        ({"epochs": 0}, "`epochs` must be >= 1. Received: epochs=0"),
        ({"limit": -5}, "`limit` must be >= 0. Received: limit=-5"),
    ],
)
def test_bad_settings_are_refused_before_the_workdir_is_written(tmp_path, change, message):
    with pytest.raises(OdezooError, match=re.escape(message)):
        train(replace(SMOKE, **change), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_checkpoint_restores_weights_and_optimizer(tmp_path):
    def build():
        model = LMResNet(depth=8, num_classes=3, image_shape=(8, 8, 1), width=2)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy"
        )
        return model

    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    y = np.array([0, 1, 2, 0])
    first = build()
    checkpoint = EpochCheckpoint(tmp_path)
    assert checkpoint.restore(first) == 0
    first.fit(x, y, epochs=2, batch_size=2, callbacks=[checkpoint], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002.weights.h5", "state.json"]
    second = build()
    resumed = EpochCheckpoint(tmp_path)
    assert resumed.restore(second) == 2 and len(resumed.history) == 2
    assert int(second.optimizer.iterations) == int(first.optimizer.iterations) == 4
    for a, b in zip(first.optimizer.variables, second.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(first(x)), np.asarray(second(x)))


def test_strategies():
    import tensorflow as tf

    assert make_strategy("default") is tf.distribute.get_strategy()
    assert make_strategy("auto").num_replicas_in_sync == 1
    assert make_strategy("mirrored").num_replicas_in_sync == 1  # one CPU device here
    with pytest.raises(OdezooError, match="Unknown strategy 'horovod'"):
        make_strategy("horovod")


def _silent_port():
    """A socket on 127.0.0.1 that listens and never accepts, its queue full: a connection gets no answer."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    queued = socket.create_connection(server.getsockname(), timeout=1)
    return server, queued


def test_a_tpu_that_is_not_there_is_one_line_and_no_hang(capsys, monkeypatch, tmp_path):
    """strategy=tpu without an address (and no local TPU) says what to pass; an address nobody answers
    is refused after a short timeout instead of waiting forever in TensorFlow's connection."""
    import socket
    import time

    import tensorflow as tf
    from test_cli import fails

    import odezoo.training

    monkeypatch.setattr(
        tf.config, "experimental_connect_to_cluster", lambda _: pytest.fail("no TPU answered")
    )
    with pytest.raises(
        OdezooError, match=r"^strategy=tpu found no TPU on this machine; name one: --set tpu="
    ):
        make_strategy("tpu")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens on `port`
    start = time.perf_counter()
    with pytest.raises(
        OdezooError, match=rf"^No TPU answers at grpc://127.0.0.1:{port} \(Connection refused\)"
    ):
        make_strategy("tpu", f"grpc://127.0.0.1:{port}", timeout=1)
    server, queued = _silent_port()
    with (
        server,
        queued,
        pytest.raises(OdezooError, match=r"\(no answer within 0.5 s\); check --set tpu=ADDRESS"),
    ):
        make_strategy("auto", f"grpc://127.0.0.1:{server.getsockname()[1]}", timeout=0.5)
    assert time.perf_counter() - start < 10

    monkeypatch.setattr(odezoo.training, "TPU_CONNECT_TIMEOUT", 0.5)  # the timeout a recipe runs with
    common = ["train", "lm_resnet20_fashion_mnist", "--set", "strategy=tpu", "--workdir", tmp_path / "w"]
    assert "found no TPU on this machine; name one: --set tpu=grpc://HOST:8470" in fails(capsys, *common)
    server, queued = _silent_port()
    with server, queued:
        line = fails(capsys, *common, "--set", f"tpu=grpc://127.0.0.1:{server.getsockname()[1]}")
    assert line.startswith("odezoo train: error: No TPU answers at grpc://127.0.0.1:")


def _run(script, tmp_path, **env):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


PRELUDE = """
    import os, signal
    from dataclasses import replace
    import keras, tensorflow_datasets as tfds
    from odezoo.recipes.lm_resnet import FASHION_MNIST, train
    SMOKE = replace(FASHION_MNIST, depth=8, width=4, batch_size=2, limit=4)
"""


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    killed = _run(
        PRELUDE
        + """
    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)
    with tfds.testing.mock_data(num_examples=8):
        train(replace(SMOKE, epochs=3), "run", callbacks=[Kill()])
    """,
        tmp_path,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2
    resumed = _run(
        PRELUDE
        + """
    with tfds.testing.mock_data(num_examples=8):
        print(train(replace(SMOKE, epochs=3), "run"))
    """,
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming run at epoch 3 of 3." in resumed.stdout
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[:2] == state["history"]


@pytest.mark.slow
def test_recipe_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    out = _run(
        """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    """
        + PRELUDE
        + """
    from odezoo.training import make_strategy
    print("replicas", make_strategy("mirrored").num_replicas_in_sync)
    with tfds.testing.mock_data(num_examples=8):
        print(train(replace(SMOKE, epochs=1, strategy="mirrored"), "run"))
    """,
        tmp_path,
        TF_ENABLE_ONEDNN_OPTS="0",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "replicas 2" in out.stdout
    assert (tmp_path / "run" / "lm_resnet8_fashion_mnist" / "model.weights.h5").is_file()


@pytest.mark.slow
def test_mirrored_on_cpus_with_onednn_says_what_to_do(tmp_path):
    out = _run(
        """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from odezoo.cli import main
    argv = ["train", "lm_resnet_fashion_mnist", "--set", "strategy=mirrored", "--workdir", "run"]
    raise SystemExit(main(argv))
    """,
        tmp_path,
        TF_ENABLE_ONEDNN_OPTS="1",
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "odezoo train: error: MirroredStrategy over several CPU devices needs TensorFlow's oneDNN "
        "kernels off: start Python with TF_ENABLE_ONEDNN_OPTS=0."
    )


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_minimize_steps_back_from_diverging_points_and_keeps_the_best(method):
    import tensorflow as tf

    from odezoo.training import minimize

    v = tf.Variable([0.0, 0.0], dtype=tf.float64)

    def loss():  # NaN outside |v| < 3, as a rollout that blows up; minimum 0 at (2, -1)
        value = tf.reduce_sum(tf.square(v - tf.constant([2.0, -1.0], tf.float64))) * 50.0
        return tf.where(tf.reduce_max(tf.abs(v)) < 3.0, value, tf.constant(np.nan, tf.float64))

    result = minimize(loss, [v], method=method, maxiter=50)
    assert np.isfinite(result["loss"]) and result["loss"] < 1e-8
    np.testing.assert_allclose(v.numpy(), [2.0, -1.0], atol=1e-5)


@pytest.mark.parametrize("method, stop", [("bfgs", "Maximum number of iterations"), ("adam", "maxiter")])
def test_minimize_says_why_it_stopped(method, stop):
    import tensorflow as tf

    from odezoo.training import minimize

    v = tf.Variable([0.0, 0.0, 0.0], dtype=tf.float64)
    scale = tf.constant([1.0, 10.0, 100.0], tf.float64)
    result = minimize(lambda: tf.reduce_sum(scale * tf.square(v - 1.0)), [v], method=method, maxiter=1)
    assert stop in result["stop"] and result["iterations"] == 1


def test_metrics_json_is_replaced_atomically(tmp_path, monkeypatch):
    """A write that fails half-way (a full disk) leaves the previous metrics.json whole."""
    import odezoo._files as files
    from odezoo.recipes._common import finish_run

    def failing_fsync(fd):  # the data were written, the disk could not hold them
        raise OSError(28, "No space left on device")

    (tmp_path / "metrics.json").write_text('{"test_accuracy": 0.5}\n')
    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    model = LMResNet(depth=8, width=2, num_classes=10, image_shape=(28, 28, 1))
    with pytest.raises(OSError, match="No space left"):
        finish_run(tmp_path, model, SMOKE, summary={"test_accuracy": 0.9}, history=[], metadata={})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"test_accuracy": 0.5}
    assert not list(tmp_path.glob(".metrics.json.tmp-*"))


def test_a_second_training_on_the_same_workdir_is_refused_at_once(tmp_path):
    """The first holds an flock on run.lock; the second process is told who, before it writes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from odezoo.recipes._common import _lock
            from pathlib import Path
            _lock(Path({str(tmp_path)!r})); print("locked", flush=True); time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OdezooError, match=rf"in use by another training \(pid {holder.pid}, started"):
            train(SMOKE, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    from odezoo.recipes._common import _lock, release

    _lock(tmp_path)  # the killed holder left nothing stuck
    release(tmp_path)


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(OdezooError, match="--workdir .*run is a file; give a folder"):
        train(SMOKE, tmp_path / "run")


@pytest.mark.parametrize("value", [0, "3", 2.0, True])
def test_num_classes_must_be_a_positive_int(value):
    with pytest.raises(
        OdezooError, match=rf"`num_classes` must be a positive integer .*Received: num_classes={value!r}"
    ):
        LMResNet(depth=8, num_classes=value)


def test_a_full_disk_stops_training_with_one_message_before_hdf5_writes(tmp_path, monkeypatch):
    """HDF5 crashed the process when a checkpoint met a full disk; the space is checked first."""
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with tfds.testing.mock_data(num_examples=8):
        with pytest.raises(
            OdezooError, match=r"Not enough disk space for the epoch 1 checkpoint .* 0 MB free"
        ):
            train(SMOKE, tmp_path)
    assert not list((tmp_path / "checkpoints").glob("*.h5"))


def test_a_folder_of_other_files_is_not_used_as_a_workdir(tmp_path):
    (tmp_path / "config.json").write_text('{"my": "settings"}')
    (tmp_path / "thesis.txt").write_text("chapter 1")
    with pytest.raises(OdezooError, match="holds files .* but no run of this recipe"):
        train(SMOKE, tmp_path)
    assert (tmp_path / "config.json").read_text() == '{"my": "settings"}'


@pytest.mark.slow  # three short training runs
def test_a_run_from_before_a_setting_existed_resumes_with_its_default(tmp_path):
    """A run's config.json that lacks a setting added to the recipe later was run with that setting's
    default: it resumes; asking for another value is a changed setting, refused."""
    with tfds.testing.mock_data(num_examples=8):
        train(SMOKE, tmp_path)
        saved = json.loads((tmp_path / "config.json").read_text())
        del saved["label_smoothing"]
        (tmp_path / "config.json").write_text(json.dumps(saved))
        with pytest.raises(OdezooError, match=r"other settings \(label_smoothing 0\.0 -> 0\.1\)"):
            train(replace(SMOKE, label_smoothing=0.1), tmp_path)
        train(replace(SMOKE, epochs=2), tmp_path)
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 2
    assert json.loads((tmp_path / "config.json").read_text())["label_smoothing"] == SMOKE.label_smoothing


def test_more_epochs_on_a_finished_run_says_what_happens_to_the_schedule(tmp_path, capsys):
    with tfds.testing.mock_data(num_examples=8):
        train(SMOKE, tmp_path)
        capsys.readouterr()
        train(replace(SMOKE, epochs=2), tmp_path)
    assert (
        "Note: epochs 1 -> 2: the learning-rate schedule is rebuilt for 2 epochs" in capsys.readouterr().err
    )
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 2
