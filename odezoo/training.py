"""Training machinery shared by recipes (TensorFlow-specific): strategies and resumable checkpoints."""

import json
import math
import os
import sys
import time
from pathlib import Path

import keras

from odezoo.errors import OdezooError

STRATEGIES = ("auto", "default", "mirrored", "tpu")


def make_strategy(name="auto", tpu=""):
    """Returns a `tf.distribute` strategy.

    Args:
        name: `"auto"` (TPU if `tpu` is given, `MirroredStrategy` over all local GPUs
            when there are two or more, else the default strategy), `"default"` (one
            device), `"mirrored"` (all local GPUs, or all logical CPU devices when there
            is no GPU) or `"tpu"`.
        tpu: TPU address or name for `TPUClusterResolver` ("" = the local TPU).
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise OdezooError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")
    if name == "tpu" or (name == "auto" and tpu):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "mirrored":
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        if not gpus and len(cpus) > 1 and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
            # TF 2.21's oneDNN kernels corrupt the heap when replicas on logical CPU
            # devices run convolutions concurrently (seen as "corrupted size vs. prev_size").
            raise OdezooError(
                "MirroredStrategy over several CPU devices needs TensorFlow's oneDNN kernels off: "
                "start Python with TF_ENABLE_ONEDNN_OPTS=0."
            )
        return tf.distribute.MirroredStrategy(devices=gpus or cpus)
    if name == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy(devices=gpus)
    return tf.distribute.get_strategy()


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and history after every epoch so a killed run resumes.

    Each epoch writes `epoch-NNNN.weights.h5` in full, then atomically replaces
    `state.json`, which names it; a kill at any moment leaves the last finished
    epoch loadable. Each history entry holds the epoch's logs, its wall-clock `seconds`
    and this process's `cpu_seconds`, so a resumed run still knows its training time.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = Path(directory)
        self.state_path = self.directory / "state.json"
        self.history = []
        self._start = (0.0, 0.0)

    def train_seconds(self):
        """Wall-clock and CPU seconds of the finished epochs, summed."""
        return (
            sum(h.get("seconds", 0.0) for h in self.history),
            sum(h.get("cpu_seconds", 0.0) for h in self.history),
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def restore(self, model):
        """Loads the last finished epoch into `model` (compiled); returns the epoch to start at."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.state_path.is_file():
            return 0
        state = json.loads(self.state_path.read_text())
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        self.history = state["history"]
        self._remove_other_checkpoints(state["weights"])
        return state["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.append({"epoch": epoch + 1, **logs, "seconds": wall, "cpu_seconds": cpu})
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        self.model.save_weights(self.directory / name)
        write_json_atomic(self.state_path, {"epoch": epoch + 1, "weights": name, "history": self.history})
        self._remove_other_checkpoints(name)

    def _remove_other_checkpoints(self, keep):
        for path in self.directory.glob("epoch-*.weights.h5"):
            if path.name != keep:
                path.unlink()


RESUMABLE_CHANGES = ("epochs", "strategy", "tpu", "data_dir")


def start_run(workdir, config):
    """Creates `workdir` and writes `config.json`, refusing a workdir whose checkpoints come from a run
    with other settings (only `RESUMABLE_CHANGES` may differ), which resuming would silently mix."""
    workdir = Path(workdir)
    saved_path, state = workdir / "config.json", workdir / "checkpoints" / "state.json"
    if state.is_file() and saved_path.is_file():
        saved = json.loads(saved_path.read_text())
        changed = {
            k: (saved.get(k), v)
            for k, v in config.items()
            if saved.get(k) != v and k not in RESUMABLE_CHANGES
        }
        if changed:
            diff = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise OdezooError(
                f"{workdir} holds checkpoints of a run with other settings ({diff}); resuming would mix "
                "the two. Rerun with the same settings, or choose a new --workdir."
            )
    workdir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(saved_path, config)
    return workdir


def fit_resumable(model, dataset, *, epochs, steps_per_epoch, directory, strategy, callbacks=()):
    """Fits the compiled `model` up to `epochs`, resuming after the last epoch checkpointed in
    `directory` (one checkpoint per epoch). Returns the `EpochCheckpoint`, whose `history` covers
    every epoch, resumed ones included."""
    checkpoint = EpochCheckpoint(directory)
    with strategy.scope():
        initial_epoch = checkpoint.restore(model)
    if initial_epoch < epochs:
        if initial_epoch:
            print(f"Resuming {Path(directory).parent} at epoch {initial_epoch + 1} of {epochs}.")
        model.fit(
            dataset,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # the pipeline shuffles
            callbacks=[checkpoint, *callbacks],
            verbose=1 if sys.stdout.isatty() else 2,
        )
    return checkpoint


def learning_rate_schedule(rate, *, epochs, steps_per_epoch, milestones=()):
    """Cosine decay from `rate` to 0 over the run, or, given `milestones` (epochs), `rate` divided
    by 10 at each milestone (PyTorch's MultiStepLR, as the official YOPO / LM-ResNet code uses)."""
    total = max(epochs * steps_per_epoch, 1)
    if not milestones:
        return keras.optimizers.schedules.CosineDecay(rate, total)
    # Keras keeps a value up to and including its boundary; step `m * steps_per_epoch` opens epoch m + 1
    bounds = [math.floor(m * steps_per_epoch) - 1 for m in milestones]
    values = [rate * 0.1**k for k in range(len(bounds) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)


def write_json_atomic(path, obj):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def minimize(loss_fn, variables, *, method="bfgs", maxiter=2000, learning_rate=1e-3, gtol=2e-16):
    """Minimises `loss_fn()` over `variables` in place; returns `{"loss", "iterations", "evaluations"}`.

    `method` is `"bfgs"` or `"lbfgs"` (SciPy's BFGS / L-BFGS-B over the flattened variables, as
    the PDE-Net papers do, with loss and gradient from one compiled TensorFlow function) or
    `"adam"` (`maxiter` Adam steps). Points where the loss or its gradient is not finite (a rollout
    that diverged) are reported to SciPy as a huge loss, and the best point seen is kept.
    """
    import numpy as np
    import scipy.optimize
    import tensorflow as tf

    if method not in ("bfgs", "lbfgs", "adam"):
        raise OdezooError(f"Unknown optimizer {method!r}; choose 'bfgs', 'lbfgs' or 'adam'.")
    shapes = [tuple(v.shape) for v in variables]
    sizes = [int(np.prod(s)) for s in shapes]

    @tf.function
    def value_and_gradient():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        return loss, tf.concat([tf.reshape(g, [-1]) for g in grads], 0)

    if method == "adam":
        optimizer = keras.optimizers.Adam(learning_rate)
        for _ in range(maxiter):
            with tf.GradientTape() as tape:
                loss = loss_fn()
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": float(loss_fn()), "iterations": maxiter, "evaluations": maxiter}

    def assign(flat):
        for v, piece, shape in zip(variables, np.split(flat, np.cumsum(sizes)[:-1]), shapes):
            v.assign(piece.reshape(shape))

    start = np.concatenate([np.asarray(v.numpy(), "float64").ravel() for v in variables])
    best = {"loss": np.inf, "x": start}

    def fun(flat):
        assign(flat)
        loss, grad = value_and_gradient()
        loss, grad = float(loss), grad.numpy().astype("float64")
        if not (np.isfinite(loss) and np.isfinite(grad).all()):
            # a trial point where the rollout diverged: a huge value makes the line search step back
            return 1e30, np.zeros_like(grad)
        if loss < best["loss"]:
            best.update(loss=loss, x=flat.copy())
        return loss, grad

    if method == "bfgs":
        options = {"maxiter": maxiter, "gtol": gtol}
        result = scipy.optimize.minimize(fun, start, jac=True, method="BFGS", options=options)
    else:
        options = {"maxiter": maxiter, "maxcor": 500, "ftol": 1e-16, "gtol": gtol}
        result = scipy.optimize.minimize(fun, start, jac=True, method="L-BFGS-B", options=options)
    # the best point evaluated (the optimiser's last point can be worse after a failed line search)
    assign(best["x"])
    return {"loss": best["loss"], "iterations": int(result.nit), "evaluations": int(result.nfev)}
