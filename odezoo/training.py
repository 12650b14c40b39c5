"""Training machinery shared by recipes (TensorFlow-specific): strategies, resumable checkpoints,
learning-rate schedules and BFGS."""

import json
import math
import os
import sys
import time
from pathlib import Path

import keras

from odezoo._files import write_json_atomic
from odezoo.errors import OdezooError

STRATEGIES = ("auto", "default", "mirrored", "tpu", "multi_worker")
TPU_CONNECT_TIMEOUT = 30.0  # seconds a TPU's address has to accept a connection before a run gives up


def check_strategy(name):
    """Raises unless `name` is one of `STRATEGIES` (and, for `multi_worker`, `check_cluster` passes)."""
    if name not in STRATEGIES:
        raise OdezooError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")
    if name == "multi_worker":
        check_cluster()


def make_strategy(name="auto", tpu="", *, timeout=None):
    """Returns a `tf.distribute` strategy.

    Args:
        name: `"auto"` (TPU if `tpu` is given, `MirroredStrategy` over all local GPUs
            when there are two or more, else the default strategy), `"default"` (one
            device), `"mirrored"` (all local GPUs, or all logical CPU devices when there
            is no GPU), `"tpu"` or `"multi_worker"` (`MultiWorkerMirroredStrategy` over the
            cluster in the `TF_CONFIG` environment variable; see `multi_worker_strategy`).
        tpu: TPU address or name for `TPUClusterResolver` ("" = the local TPU).
        timeout: seconds the TPU's address has to answer (`tpu_strategy`; `None`: `TPU_CONNECT_TIMEOUT`).
    """
    import tensorflow as tf

    check_strategy(name)
    if name == "multi_worker":
        return multi_worker_strategy()
    if name == "tpu" or (name == "auto" and tpu):
        return tpu_strategy(tpu, timeout)
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


def tpu_strategy(tpu="", timeout=None):
    """`TPUStrategy` on the TPU `tpu` (a `grpc://HOST:PORT` address or a Cloud TPU name; "": the local
    TPU). Raises `OdezooError` in one line where no TPU is found, and where its address does not accept a
    connection within `timeout` seconds (`None`: `TPU_CONNECT_TIMEOUT`), instead of waiting forever."""
    import tensorflow as tf

    timeout = TPU_CONNECT_TIMEOUT if timeout is None else timeout
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    except ValueError:  # "Please provide a TPU Name to connect to."
        raise OdezooError(
            "strategy=tpu found no TPU on this machine; name one: --set tpu=grpc://HOST:8470 (its address) "
            "or --set tpu=NAME (a Cloud TPU)."
        ) from None
    except OSError as error:  # a name the Cloud TPU API cannot look up (urllib's URLError)
        raise OdezooError(
            f"Cannot find the TPU {tpu!r} ({getattr(error, 'reason', error)}); give its address: "
            "--set tpu=grpc://HOST:8470."
        ) from None
    if resolver.master().startswith("grpc://"):
        _check_answers(resolver.master(), timeout)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _check_answers(address, timeout):
    """Raises `OdezooError` unless `grpc://HOST:PORT` accepts a TCP connection within `timeout` seconds
    (TensorFlow's own connection would wait forever)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port or 8470
    except ValueError:
        host = None
    if not host:
        raise OdezooError(f"{address!r} is no TPU address; write --set tpu=grpc://HOST:PORT.")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        timed_out = isinstance(error, TimeoutError)
        why = f"no answer within {timeout:g} s" if timed_out else error.strerror or error
        raise OdezooError(
            f"No TPU answers at {address} ({why}); check --set tpu=ADDRESS and that the TPU is up."
        ) from None


STATE_FILE = "state.json"  # names the last checkpoint written; replaced atomically


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
        epoch, weights, history = read_checkpoint(self.directory, "epoch")
        if not epoch:
            return 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(weights)
        self.history = history
        remove_other_checkpoints(self.directory, "epoch", weights.name)
        return epoch

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.append({"epoch": epoch + 1, **logs, "seconds": wall, "cpu_seconds": cpu})
        write_checkpoint(self.directory, self.model, "epoch", epoch + 1, self.history)


def checkpointed_epoch(directory):
    """The last epoch `EpochCheckpoint` finished in `directory` (0: none), without loading anything."""
    return read_checkpoint(directory, "epoch")[0]


def read_checkpoint(directory, unit):
    """`(index, weights path, history)` of the last `<unit>` checkpoint `write_checkpoint` wrote in
    `directory`, read from its `state.json`; `(0, None, [])` where there is none."""
    state_path = Path(directory) / STATE_FILE
    if not state_path.is_file():
        return 0, None, []
    state = json.loads(state_path.read_text())
    return state[unit], Path(directory) / state["weights"], state["history"]


def write_checkpoint(directory, model, unit, index, history):
    """Writes `<unit>-NNNN.weights.h5` in full, then atomically replaces `state.json`, which names it
    (`{unit: index, "weights": file, "history": history}`), then removes older `<unit>-*` files: a kill
    at any moment leaves the last finished epoch or stage loadable."""
    from odezoo.pretrained import check_free_space

    directory = Path(directory)
    name = f"{unit}-{index:04d}.weights.h5"
    check_free_space(directory, model, f"the {unit} {index} checkpoint", factor=3)
    model.save_weights(directory / name)
    write_json_atomic(directory / STATE_FILE, {unit: index, "weights": name, "history": history})
    remove_other_checkpoints(directory, unit, name)


def remove_other_checkpoints(directory, unit, keep):
    for path in Path(directory).glob(f"{unit}-*.weights.h5"):
        if path.name != keep:
            path.unlink()


def fit_resumable(model, dataset, *, epochs, steps_per_epoch, directory, strategy, callbacks=()):
    """Fits the compiled `model` up to `epochs`, resuming after the last epoch checkpointed in
    `directory` (one checkpoint per epoch). Returns the `EpochCheckpoint`, whose `history` covers
    every epoch, resumed ones included."""
    if is_multi_worker(strategy):
        return fit_multi_worker_resumable(
            model,
            dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            directory=directory,
            strategy=strategy,
            callbacks=callbacks,
        )
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


def multi_worker_strategy():
    """`MultiWorkerMirroredStrategy` over the cluster that the `TF_CONFIG` environment variable describes
    (`check_cluster`). Create it before the worker runs any other TensorFlow op."""
    import tensorflow as tf

    check_cluster()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_cluster():
    """Raises unless the `TF_CONFIG` environment variable describes a multi-worker cluster, e.g.
    `{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}`
    (the same cluster on every worker, each with its own index; worker 0 is the chief)."""
    raw = os.environ.get("TF_CONFIG", "")
    example = (
        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    if not raw.strip():
        raise OdezooError(
            "strategy=multi_worker reads the cluster from the TF_CONFIG environment variable, which is "
            f"not set. Start every worker with it, its own index each, e.g. {example}."
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task_type, index = config["task"]["type"], config["task"]["index"]
        valid = (
            isinstance(workers, list)
            and workers
            and task_type in ("worker", "chief")
            and isinstance(index, int)
            and 0 <= index < len(config["cluster"].get(task_type, []))
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        raise OdezooError(
            f"TF_CONFIG={raw!r} does not describe a multi-worker cluster: it needs a non-empty "
            "cluster.worker list of host:port and task.type 'worker' (or 'chief') with task.index an "
            f"index into that list, e.g. {example}."
        )


def is_multi_worker(strategy):
    """Whether `strategy` is a `MultiWorkerMirroredStrategy` (whose replicas may be on several hosts)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process is the chief of a multi-worker cluster (task type "chief", or worker 0 when
    there is none); always true for a single-host strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def fit_multi_worker(model, dataset, *, epochs, steps_per_epoch, strategy, initial_epoch=0, callbacks=()):
    """Trains the compiled `model` (its variables created under `strategy.scope()`) as `model.fit`
    would, with a loop of `strategy.run(model.train_step)` steps in a `tf.function`: Keras 3's own `fit`
    fails under `MultiWorkerMirroredStrategy` (keras#20585).

    `dataset` yields global batches, built the same way (same seed) on every worker; each worker gets
    its share of every batch (`strategy.experimental_distribute_dataset` shards it). The gradients
    are summed across the replicas by the optimizer, whose loss `train_step` divides by the replica
    count, so one step equals one step on the whole batch on one device (batch-norm statistics
    excepted: each replica normalises its own share). `callbacks` see `on_epoch_begin/end`,
    `on_train_batch_end` with the logs averaged over the workers. Returns the last epoch's logs.
    """
    import tensorflow as tf

    callbacks = keras.callbacks.CallbackList(list(callbacks), model=model)
    distributed = strategy.experimental_distribute_dataset(dataset)
    infinite = int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    chief = is_chief(strategy)

    @tf.function
    def train_step(iterator):
        logs = _flat_logs(strategy.run(model.train_step, args=(next(iterator),)))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    model.stop_training = False
    callbacks.on_train_begin()
    iterator, logs = iter(distributed), {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        start = time.perf_counter()
        if not infinite and epoch > initial_epoch:
            iterator = iter(distributed)
        for step in range(steps_per_epoch):
            logs = train_step(iterator)
            callbacks.on_train_batch_end(step, logs)
        logs = {k: float(v) for k, v in logs.items()}
        if chief:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - start:.0f}s - {shown}", flush=True)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return logs


def _flat_logs(logs):
    """`logs` with nested dicts (a compiled-metrics container's result) merged in, as `fit` shows them."""
    flat = {}
    for key, value in logs.items():
        flat.update(_flat_logs(value) if isinstance(value, dict) else {key: value})
    return flat


def fit_multi_worker_resumable(model, dataset, *, epochs, steps_per_epoch, directory, strategy, callbacks=()):
    """`fit_resumable` under `MultiWorkerMirroredStrategy`: only the chief writes checkpoints to
    `directory`, the other workers to a temporary folder (removed at the end), as TensorFlow advises.
    The chief restores the last finished epoch and sends its weights, optimizer state and epoch to
    the other workers, so they need not see its files."""
    import shutil
    import tempfile

    chief = is_chief(strategy)
    scratch = None if chief else tempfile.mkdtemp(prefix="odezoo-worker-")
    checkpoint = EpochCheckpoint(directory if chief else scratch)
    try:
        with strategy.scope():  # variables are created (and broadcast) on every worker alike
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            epoch = keras.Variable(0, dtype="int64", trainable=False, name="restored_epoch")
        # outside the scope: only the chief loads, which must start no collective op
        epoch.assign(checkpoint.restore(model))
        _broadcast_from_chief(strategy, [*model.weights, *model.optimizer.variables, epoch])
        initial_epoch = int(epoch.numpy())
        if initial_epoch < epochs:
            if initial_epoch and chief:
                print(f"Resuming {Path(directory).parent} at epoch {initial_epoch + 1} of {epochs}.")
            fit_multi_worker(
                model,
                dataset,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                strategy=strategy,
                initial_epoch=initial_epoch,
                callbacks=[checkpoint, *callbacks],
            )
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return checkpoint


def _broadcast_from_chief(strategy, variables):
    """Sets `variables` (created under `strategy.scope()`) to their values on replica 0 (the chief's)."""
    import tensorflow as tf

    tensors = [v.value if hasattr(v, "value") else v for v in variables]

    @tf.function
    def gather():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            keep = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float64)
            return [context.all_reduce("SUM", tf.cast(t, tf.float64) * keep) for t in tensors]

        return strategy.run(replica_fn)

    for variable, value in zip(variables, gather()):
        variable.assign(tf.cast(strategy.experimental_local_results(value)[0], variable.dtype))


def epoch_dataset(batches_of_epoch, make_batch, output_signature, *, first_epoch=0):
    """An endless `tf.data.Dataset` of `make_batch(rows)` for every `rows` that `batches_of_epoch(epoch)`
    gives, epoch after epoch from `first_epoch`: a resumed run draws the order its next epoch would have
    had (draw each epoch's order from the seed and the epoch's number)."""
    import tensorflow as tf

    def generate():
        epoch = first_epoch
        while True:
            for rows in batches_of_epoch(epoch):
                yield make_batch(rows)
            epoch += 1

    return tf.data.Dataset.from_generator(generate, output_signature=output_signature).prefetch(2)


def learning_rate_schedule(rate, *, epochs, steps_per_epoch, milestones=(), warmup_epochs=0.0):
    """Cosine decay from `rate` to 0 over the run, or, given `milestones` (epochs), `rate` divided
    by 10 at each milestone (PyTorch's MultiStepLR, as the official YOPO / LM-ResNet code uses);
    times a linear warm-up `min(1, (step + 1) / warmup_steps)` over the first `warmup_epochs`."""
    total = max(epochs * steps_per_epoch, 1)
    if not milestones:
        schedule = keras.optimizers.schedules.CosineDecay(rate, total)
    else:
        # Keras keeps a value up to and including its boundary; step `m * steps_per_epoch` opens epoch m + 1
        bounds = [math.floor(m * steps_per_epoch) - 1 for m in milestones]
        values = [rate * 0.1**k for k in range(len(bounds) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    return LinearWarmUp(schedule, warmup_steps) if warmup_steps > 0 else schedule


@keras.saving.register_keras_serializable(package="odezoo")
class LinearWarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule(step) * min(1, (step + 1) / warmup_steps)`."""

    def __init__(self, schedule, warmup_steps):
        self.schedule, self.warmup_steps = schedule, int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        ramp = keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return self.schedule(step) * ramp

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["warmup_steps"])


@keras.saving.register_keras_serializable(package="odezoo")
class InverseSquareRoot(keras.optimizers.schedules.LearningRateSchedule):
    """fairseq's `inverse_sqrt`: `lr(t) = init + (peak - init) · t / warmup` for `t < warmup`, then
    `peak · sqrt(warmup / t)`."""

    def __init__(self, peak, warmup, init=1e-7):
        self.peak, self.warmup, self.init = float(peak), int(warmup), float(init)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32") + 1.0  # fairseq counts updates from 1
        rising = self.init + (self.peak - self.init) * t / self.warmup
        return keras.ops.where(t < self.warmup, rising, self.peak * keras.ops.sqrt(self.warmup / t))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup, "init": self.init}


@keras.saving.register_keras_serializable(package="odezoo")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr(t) = init + (peak - init) · t / warmup` for `t < warmup`, then linear from `peak` to 0 at
    `total` (fairseq's `polynomial_decay` with power 1 and end rate 0); `t` counts updates from 1."""

    def __init__(self, peak, warmup, total, init=1e-7):
        self.peak, self.warmup, self.total, self.init = float(peak), int(warmup), int(total), float(init)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32") + 1.0
        rising = self.init + (self.peak - self.init) * t / max(self.warmup, 1)
        falling = self.peak * keras.ops.maximum(self.total - t, 0.0) / max(self.total - self.warmup, 1)
        return keras.ops.where(t < self.warmup, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup, "total": self.total, "init": self.init}


def minimize(loss_fn, variables, *, method="bfgs", maxiter=2000, learning_rate=1e-3, gtol=2e-16):
    """Minimises `loss_fn()` over `variables` in place; returns `{"loss", "iterations", "evaluations",
    "stop"}`, `stop` being why the optimiser stopped (SciPy's message; `"maxiter"` for Adam).

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
        return {"loss": float(loss_fn()), "iterations": maxiter, "evaluations": maxiter, "stop": "maxiter"}

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
    return {
        "loss": best["loss"],
        "iterations": int(result.nit),
        "evaluations": int(result.nfev),
        "stop": str(result.message),
    }
