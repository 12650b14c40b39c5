"""MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1: Keras `fit` fails (keras#20585),
`fit_multi_worker` trains, an update over two workers equals one on one worker, the recipe resumes."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from odezoo import OdezooError
from odezoo.training import make_strategy


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(script, tmp_path, timeout=100):
    """Runs `script` in two worker processes of one loopback cluster; returns their (code, output)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_ENABLE_ONEDNN_OPTS": "0",
            "CUDA_VISIBLE_DEVICES": "",
            "TF_CONFIG": json.dumps(tf_config),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(script)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
    results = []
    try:
        for proc in procs:
            try:
                results.append((proc.wait(timeout=timeout), proc.stdout.read()))
            except subprocess.TimeoutExpired:
                results.append(("timeout", ""))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    return results


def test_multi_worker_strategy_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(OdezooError, match="reads the cluster from the TF_CONFIG environment variable"):
        make_strategy("multi_worker")
    for bad in (
        "{",
        '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
        '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}',
        '{"cluster": [], "task": {}}',
    ):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(OdezooError, match="does not describe a multi-worker cluster"):
            make_strategy("multi_worker")


@pytest.mark.slow
def test_keras_fit_under_multi_worker_strategy_still_fails(tmp_path):
    """The measured failure of keras#20585 (Keras 3.15, TF 2.21): `fit` reduces the first distributed
    batch with `strategy.reduce`, which MultiWorkerMirroredStrategy cannot do with a tuple of
    PerReplica values. When this test fails, Keras has fixed it and `fit_multi_worker` may go."""
    results = _workers(
        """
    import numpy as np, keras, tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    x = np.ones((16, 4), "float32")
    model.fit(tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8), epochs=1, verbose=0)
    """,
        tmp_path,
    )
    for code, output in results:
        assert code == 1, output[-3000:]
        assert "ValueError: Attempt to convert a value (PerReplica:{" in output, output[-3000:]
        assert "with an unsupported type (<class 'tensorflow.python.distribute.values.PerReplica'>)" in output


UPDATE = """
    import sys, numpy as np, keras, tensorflow as tf
    from odezoo.training import fit_multi_worker, make_strategy
    strategy = make_strategy("multi_worker")
    kind = sys.argv[1]

    def build():
        keras.utils.set_random_seed(0)
        if kind == "lm_resnet":
            from odezoo.models.lm_resnet import LMResNet
            model = LMResNet(depth=8, num_classes=10, image_shape=(8, 8, 1), width=2)
            for layer in model._flatten_layers():
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False  # inference mode: the moving statistics, the same everywhere
        else:
            inputs = keras.Input((8, 8, 1))
            x = keras.layers.ReLU(name="relu1")(keras.layers.Conv2D(4, 3, name="conv1")(inputs))
            model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
        if kind == "yopo":
            from odezoo.adversarial import AdversarialTrainer, Attack
            trainer = AdversarialTrainer(model, method="yopo", attack=Attack(1e-7, 1e-7, 1, m=2, n=2),
                                         first_layer="relu1")
        else:
            trainer = model
        optimizer = keras.optimizers.SGD(0.5, momentum=0.9, nesterov=True, weight_decay=5e-3)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        trainer.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])  # nested logs, for yopo
        return model, trainer

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.2, 0.8, (8, 8, 8, 1)).astype("float32"), rng.integers(0, 10, 8)
    with strategy.scope():
        model, trainer = build()
    start = [w.copy() for w in model.get_weights()]
    # the global batch of 8: worker i trains on x[4 i : 4 i + 4]
    fit_multi_worker(trainer, tf.data.Dataset.from_tensors((x, y)), epochs=1, steps_per_epoch=1,
                     strategy=strategy)
    one, one_trainer = build()  # one device, the default strategy, the whole batch
    one.set_weights(start)
    one_trainer.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(start, model.get_weights()))
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one.get_weights(), model.get_weights()))
    print("replicas", strategy.num_replicas_in_sync, "moved", moved, "max diff", diff)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "yopo", "lm_resnet"])
def test_an_update_over_two_workers_equals_one_worker_on_the_whole_batch(tmp_path, kind):
    """Each worker trains on its half of a batch of 8 (tf.data's sharding of the global batch); the
    optimizer sums their gradients of the loss divided by 2, so the weights after one SGD step (momentum,
    weight decay) equal one worker's on the whole batch. The LM-ResNet's batch norm runs in inference
    mode (frozen): in training mode each worker normalises with its half's statistics, not the whole
    batch's (odezoo uses no synchronised batch norm), and the two updates differ by design. `yopo` is
    `AdversarialTrainer`'s custom step (eps ~ 0 makes its random start moot)."""
    script = UPDATE.replace("sys.argv[1]", repr(kind))
    for code, output in _workers(script, tmp_path):
        assert code == 0, output[-3000:]
        line = next(line for line in output.splitlines() if line.startswith("replicas"))
        words = line.split()
        assert words[1] == "2" and float(words[3]) > 1e-3, line
        assert float(words[6]) < 1e-5, line


@pytest.mark.slow
def test_recipe_under_multi_worker_strategy_resumes_and_writes_a_loadable_preset(tmp_path):
    """Each worker has its own workdir, as on two hosts; only the chief's holds checkpoints. The resumed
    run restores the chief's checkpoint on both workers (the chief sends its weights)."""
    script = """
    import json, os
    from dataclasses import replace
    import tensorflow_datasets as tfds
    from odezoo.recipes.lm_resnet import FASHION_MNIST, train
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    config = replace(FASHION_MNIST, depth=8, width=2, epochs=EPOCHS, batch_size=4, limit=8,
                     strategy="multi_worker")
    with tfds.testing.mock_data(num_examples=8):
        print(train(config, f"run{index}"))
    """
    for epochs in (1, 2):
        results = _workers(script.replace("EPOCHS", str(epochs)), tmp_path)
        for code, output in results:
            assert code == 0, output[-3000:]
    assert "Resuming run0 at epoch 2 of 2." in results[0][1]  # printed by the chief (worker 0) only
    state = json.loads((tmp_path / "run0" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    assert not list((tmp_path / "run1").glob("checkpoints/*"))

    from odezoo import LMResNet

    chief = LMResNet.from_pretrained(tmp_path / "run0" / "lm_resnet8_fashion_mnist")
    other = LMResNet.from_pretrained(tmp_path / "run1" / "lm_resnet8_fashion_mnist")
    assert chief.outputs[0].shape[-1] == 10
    for a, b in zip(chief.trainable_weights, other.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    meta = json.loads((tmp_path / "run0" / "lm_resnet8_fashion_mnist" / "metadata.json").read_text())
    assert meta["recipe_config"]["strategy"] == "multi_worker" and len(meta["history"]) == 2
