"""Adversarial attacks, robust evaluation and adversarial training, YOPO included (TensorFlow-specific).

YOPO (Zhang, Zhang, Lu, Zhu, Dong, NeurIPS 2019) reads the network as a discrete-time control
system: the perturbation `eta` only enters the first layer `z = f0(x + eta)`, so after one full
backward pass the costate `p = -dl/dz` is kept fixed and `eta` is updated `n` times through the
first layer alone, by ascent on the Hamiltonian `H(eta) = <f0(x + eta), p>` (docs/papers.md#yopo-hamiltonian).

Models take float images in [0, 1] with normalisation inside them, as every odezoo classifier.
"""

from dataclasses import dataclass

import keras

from odezoo.adversarial.attacks import check_budget, check_examples, cross_entropy, pgd, project
from odezoo.errors import OdezooError, check_integer, check_number

METHODS = ("natural", "pgd", "free", "yopo", "trades", "trades_yopo")
FIRST_LAYER_RULES = ("paper", "official", "official_torch2")


def check_first_layer_rule(rule, method):
    """Raises `OdezooError` unless `rule` is one of `FIRST_LAYER_RULES`, and `"paper"` for methods
    other than YOPO (the only one that trains f0 on the Hamiltonian)."""
    if rule not in FIRST_LAYER_RULES:
        raise OdezooError(f"Unknown first_layer_rule {rule!r}; choose one of {FIRST_LAYER_RULES}.")
    if rule != "paper" and method != "yopo":
        raise OdezooError(
            f"first_layer_rule applies to method 'yopo' only. Received: method={method!r}, "
            f"first_layer_rule={rule!r}"
        )


def _per_replica(loss):
    """`loss` divided by the number of replicas in sync: `tf.distribute` sums the replicas' gradients."""
    import tensorflow as tf

    return loss / tf.distribute.get_strategy().num_replicas_in_sync


def _add(sums, grads):
    """`sums + grads` elementwise, a `None` gradient (variable not reached) counting as 0."""
    return [s if g is None else s + g for s, g in zip(sums, grads)]


def split_model(model, first_layer):
    """`(f0, g)` with `model(x) == g(f0(x))`, cut after the layer named `first_layer`."""
    names = [layer.name for layer in model.layers]
    if first_layer not in names:
        raise OdezooError(f"{model.name} has no layer {first_layer!r}. Its layers: {', '.join(names)}.")
    cut = model.get_layer(first_layer).output
    try:
        first = keras.Model(model.inputs[0], cut, name=f"{model.name}_f0")
        rest = keras.Model(cut, model.outputs[0], name=f"{model.name}_g")
    except ValueError as err:
        raise OdezooError(
            f"Cannot cut {model.name} after {first_layer!r}: every path from the input must pass through "
            f"that layer ({err})."
        ) from None
    return first, rest


@dataclass(frozen=True)
class Attack:
    """Budget of the training adversary: L-inf radius, step size, steps (PGD-k / Free-m / YOPO-m-n)."""

    eps: float
    step: float
    steps: int = 10  # PGD-k: k
    m: int = 5  # YOPO: full passes; Free: replays of each batch
    n: int = 3  # YOPO: first-layer steps per full pass

    def __post_init__(self):
        check_budget(self.eps, self.step, self.steps)
        check_integer("m", self.m, 1)
        check_integer("n", self.n, 0)


class AdversarialTrainer(keras.Model):
    """Wraps a classifier so that `compile` / `fit` train it adversarially.

    Methods (docs/papers.md#yopo): `"natural"`; `"pgd"` (PGD-k adversary in inference mode, loss
    CE(adv) + CE(clean)); `"free"` (each batch replayed m times, one backward updating both the
    weights and eta; eta starts at 0 on every batch, where Shafahi et al. carry it over);
    `"yopo"` (YOPO-m-n, gradients summed over the m passes, so scale the learning rate by 1/m as
    the paper does; `first_layer_rule` picks f0's gradient, see below); `"trades"` /
    `"trades_yopo"` (CE(clean) + beta KL(clean || adv), adversary by PGD-k or by YOPO's inner loop
    on the KL). The wrapped model is `self.model`; `first_layer` names the end of f0 for YOPO (e.g.
    the first conv, or its ReLU). The loss and metrics `fit` reports are on the training adversary's
    examples (clean ones for natural and TRADES). Under a `tf.distribute` strategy each replica's
    loss is divided by the replica count, as Keras does, since the replicas' gradients are summed.

    YOPO's gradient for f0's weights `W0` (docs/papers.md#yopo-official-rule). Pass `j = 1..m` runs the full
    network at `x + eta_{j-1}`, giving the costate `p_j = -dl_j/dz` and the full-pass gradient
    `G_j = dl_j/dW0`; its n inner steps move eta to `eta_j`, where the Hamiltonian part is
    `h_j = -d/dW0 <f0(clip(x + eta_j)), p_j>`. The step applies, by `first_layer_rule`:

    - `"paper"` (default): `sum_j h_j` (`G_j` discarded);
    - `"official"` (the authors' code under its pinned PyTorch 1.0.1, whose in-place gradient
      accumulation makes the restore of `conv1.weight.grad` a no-op from the second batch on):
      `sum_j (h_j + G_j)`;
    - `"official_torch2"` (the same code under PyTorch >= 2, where `zero_grad` sets gradients to
      None): `sum_j h_j + sum_{j>=2} G_j` for f0's kernels, `sum_j (h_j + G_j)` for its other
      variables (biases).

    `clean_weight` (YOPO only, default 0) adds `clean_weight * CE(model(x), y)` of the clean batch to
    YOPO's summed gradients at the cost of one more full pass, as PGD training's loss adds CE(clean).
    `clipnorm` (any method) scales each step's gradient, summed over the replicas, to global norm at
    most `clipnorm`. The published Fashion-MNIST YOPO-5-3 weights used `"official"` with `clipnorm=10`:
    unclipped, either rule collapsed at some seeds (dying ReLUs; `bench/yopo_stability.py`).
    """

    def __init__(
        self,
        model,
        *,
        method,
        attack,
        first_layer=None,
        beta=1.0,
        first_layer_rule="paper",
        clean_weight=0.0,
        clipnorm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise OdezooError(f"Unknown method {method!r}; choose one of {METHODS}.")
        if not isinstance(model, keras.Model):
            raise OdezooError(
                f"`model` must be a keras.Model, e.g. odezoo.load({model!r}) for a preset name. "
                f"Received: {model!r} ({type(model).__name__})"
            )
        if len(model.inputs) != 1:
            raise OdezooError(
                f"Adversarial training needs a model with one input (the images); {model.name} has "
                f"{len(model.inputs)}."
            )
        if method in ("yopo", "trades_yopo") and first_layer is None:
            raise OdezooError(f"Method {method!r} needs `first_layer`, the name of the layer that ends f0.")
        check_first_layer_rule(first_layer_rule, method)
        if clean_weight < 0 or (clean_weight and method != "yopo"):
            raise OdezooError(
                f"clean_weight must be >= 0 and applies to method 'yopo' only (PGD's loss always has the "
                f"clean term). Received: method={method!r}, clean_weight={clean_weight!r}"
            )
        self.clean_weight = float(clean_weight)
        if clipnorm is not None and not clipnorm > 0:
            raise OdezooError(f"clipnorm must be > 0 (or None: no clipping). Received: {clipnorm!r}")
        self.clipnorm = clipnorm
        if method != "natural" and not isinstance(attack, Attack):
            raise OdezooError(
                f"Method {method!r} needs `attack`, an odezoo.Attack, e.g. Attack(eps=8/255, step=2/255). "
                f"Received: attack={attack!r} ({type(attack).__name__})"
            )
        beta = check_number("beta", beta, 0)
        self.model, self.method, self.attack, self.beta = model, method, attack, beta
        self.first_layer_rule = first_layer_rule
        self.first, self.rest = split_model(model, first_layer) if first_layer else (None, None)
        self.calls = {"full": 0, "first": 0}  # gradient passes, counted when run eagerly
        self.built = True  # its variables are the (built) wrapped model's

    def _scaled(self, loss):
        """The loss whose gradients a step applies: per replica (`_per_replica`), times the optimizer's
        loss scale (`keras.optimizers.LossScaleOptimizer` under `mixed_float16`, which unscales the
        gradients and skips a step whose gradients overflowed; 1 otherwise). YOPO's costate `p` comes
        from this loss, so its Hamiltonian gradients carry the same scale, and the attacks' sign steps
        do not see it."""
        optimizer = getattr(self, "optimizer", None)  # none before `compile` (the adversary alone)
        return _per_replica(loss) if optimizer is None else optimizer.scale_loss(_per_replica(loss))

    def _apply(self, grads, variables):
        """One optimizer step; with `clipnorm`, the gradient summed over the replicas is first scaled
        to global norm <= clipnorm (Keras' own `global_clipnorm` would clip each replica's part; under a
        loss scale s the bound is s * clipnorm, the same bound on the unscaled gradient)."""
        import tensorflow as tf

        if self.clipnorm:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            total = grads
            if replicas > 1:
                total = tf.distribute.get_replica_context().all_reduce("SUM", grads)
            bound = self.clipnorm * tf.cast(self.optimizer.scale_loss(1.0), tf.float32)
            clipped, _ = tf.clip_by_global_norm(total, bound)
            grads = [g / replicas for g in clipped]  # the optimizer sums the replicas' shares again
        self.optimizer.apply_gradients(zip(grads, variables))

    def call(self, x, training=False):
        return self.model(x, training=training)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' `fit`, after `check_examples` on the data: on the whole of `x` and `y` where they are
        arrays, on the first batch where `x` is a `tf.data.Dataset` of `(images, labels)`."""
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset):
            first = next(iter(x.take(1)), None)
            if first is None:
                raise OdezooError("fit received an empty dataset (no batch); give one that holds examples.")
            if not isinstance(first, tuple) or len(first) < 2:
                raise OdezooError(
                    "fit takes a dataset of (images, labels) batches; its first element is "
                    f"{type(first).__name__}."
                )
            check_examples(self.model, first[0], first[1])
        elif y is not None:
            x, y = check_examples(self.model, x, y)
        return super().fit(x, y, *args, **kwargs)

    def train_step(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        x = tf.convert_to_tensor(x, tf.float32)
        step = getattr(self, f"_{self.method}_step")
        loss, logits = step(x, y)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    # --- methods -------------------------------------------------------------------------------
    def _natural_step(self, x, y):
        import tensorflow as tf

        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = cross_entropy(y, logits)
            scaled = self._scaled(loss)
        self.calls["full"] += 1
        self._apply(tape.gradient(scaled, variables), variables)
        return loss, logits

    def _pgd_step(self, x, y):
        import tensorflow as tf

        a = self.attack
        adv = pgd(self.model, x, y, eps=a.eps, step=a.step, steps=a.steps)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(adv, training=True)
            loss = cross_entropy(y, logits) + cross_entropy(y, self.model(x, training=True))
            scaled = self._scaled(loss)
        self.calls["full"] += a.steps + 1
        self._apply(tape.gradient(scaled, variables), variables)
        return loss, logits

    def _free_step(self, x, y):
        import tensorflow as tf

        a = self.attack
        eta = tf.zeros_like(x)  # carried over the m replays of this batch (not across batches)
        variables = self.model.trainable_variables
        for _ in range(a.m):
            with tf.GradientTape() as tape:
                tape.watch(eta)
                logits = self.model(x + eta, training=True)
                loss = cross_entropy(y, logits)
                scaled = self._scaled(loss)
            *grads, grad_eta = tape.gradient(scaled, [*variables, eta])
            self._apply(grads, variables)
            eta = project(x, eta + a.eps * tf.sign(grad_eta), a.eps)
            self.calls["full"] += 1
        return loss, logits

    def yopo_perturbation(self, x, y, eta):
        """YOPO-m-n's adversary from the start `eta` (docs/papers.md#yopo-hamiltonian, steps 2.1-2.5).

        Returns `(eta, rest_grads, first_grads, loss, logits)`: the gradients of g summed over the m
        full passes, `sum_j dl_j/dtheta_g`, and those of f0 under `first_layer_rule` (class docstring).

        No first-layer pass is computed twice. From pass 2 on (n >= 1), `x + eta` lies in the box, where
        H's clip changes nothing, so pass j + 1's f0 at `x + eta_j` serves twice: its backward carries
        the owed `h_j` (with `G_{j+1}` where the rule takes it) into f0's variables, and its input
        gradient `dl/d eta = -grad_eta H` is the first inner step's. A step runs n + (m - 1)(n - 1) + 1
        first-layer passes of its own, not m (n + 1).
        """
        import tensorflow as tf

        a = self.attack
        first_vars, rest_vars = self.first.trainable_variables, self.rest.trainable_variables
        full_first = self.first_layer_rule != "paper"
        rest_grads = [tf.zeros_like(v) for v in rest_vars]
        first_grads = [tf.zeros_like(v) for v in first_vars]
        owed = None  # dl/dz of the previous pass while its h is owed (x + eta then lies in the box)
        for j in range(a.m):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(eta)
                z = self.first(x + eta, training=True)
                logits = self.rest(z, training=True)
                loss = cross_entropy(y, logits)
                scaled = self._scaled(loss)
            takes_full = full_first and owed is None  # G_j separately (else it joins the owed h)
            sources = [
                *rest_vars,
                *(first_vars if takes_full else []),
                z,
                *([eta] if owed is not None else []),
            ]
            grads = tape.gradient(scaled, sources)
            d_eta = grads.pop() if owed is not None else None  # dl/d eta = -grad_eta H
            dz = grads.pop()
            self.calls["full"] += 1
            rest_grads = _add(rest_grads, grads[: len(rest_vars)])
            if owed is not None:  # h_{j-1} = d/dW0 <f0(x + eta_{j-1}), -p_{j-1}>, and G_j where taken
                first_grads = _add(
                    first_grads, tape.gradient(z, first_vars, owed + dz if full_first else owed)
                )
            elif full_first:  # the official rules' G_j, variable by variable
                full = zip(first_vars, grads[len(rest_vars) :])
                first_grads = _add(first_grads, [g if self._takes_full_pass(v, j) else None for v, g in full])
            del tape
            p = -dz  # the costate at the first layer's output, held fixed below
            eta = self._first_layer_steps(
                x, eta, p, training=True, gradient=None if d_eta is None else -d_eta
            )
            owed = dz if a.n and j < a.m - 1 else None
            if owed is None:  # no later pass computes f0 at this eta in the box
                with tf.GradientTape() as tape:
                    minus_h = -self._hamiltonian(x, eta, p, training=True)  # = <dl/dz, f0(.)>
                first_grads = _add(first_grads, tape.gradient(minus_h, first_vars))
        return eta, rest_grads, first_grads, loss, logits

    def _takes_full_pass(self, variable, j):
        """Whether f0's `variable` takes the full-pass gradient of pass `j` (from 0) under the
        official rules: all passes, except the first for kernels under `"official_torch2"`."""
        return self.first_layer_rule == "official" or j > 0 or variable.name != "kernel"

    def _hamiltonian(self, x, eta, p, training):
        """`H = <f0(clip(x + eta)), p>`; counted as one first-layer pass."""
        import tensorflow as tf

        self.calls["first"] += 1
        return tf.reduce_sum(self.first(tf.clip_by_value(x + eta, 0.0, 1.0), training=training) * p)

    def _first_layer_steps(self, x, eta, p, training, gradient=None):
        """YOPO's n inner steps with the costate `p` fixed: `eta <- P(eta - step sign grad_eta H)`,
        an ascent step on the linearised loss since `p = -dl/dz`; `gradient`, where given, is
        `grad_eta H` at the start (from the full pass that just ran)."""
        import tensorflow as tf

        for k in range(self.attack.n):
            if k or gradient is None:
                with tf.GradientTape() as tape:
                    tape.watch(eta)
                    hamiltonian = self._hamiltonian(x, eta, p, training)
                gradient = tape.gradient(hamiltonian, eta)
            eta = project(x, eta - self.attack.step * tf.sign(gradient), self.attack.eps)
        return eta

    def _yopo_step(self, x, y):
        import tensorflow as tf

        a = self.attack
        eta = tf.random.uniform(tf.shape(x), -a.eps, a.eps)
        _, rest_grads, first_grads, loss, logits = self.yopo_perturbation(x, y, eta)
        parts = [*self.rest.trainable_variables, *self.first.trainable_variables]
        grads = {id(v): g for v, g in zip(parts, [*rest_grads, *first_grads])}
        # in the model's order, so that the optimizer's slots match a checkpoint restored into the model
        variables = self.model.trainable_variables
        grads = [grads[id(v)] for v in variables]
        if self.clean_weight:  # + clean_weight CE(clean), one more full pass
            with tf.GradientTape() as tape:
                clean = self.clean_weight * cross_entropy(y, self.model(x, training=True))
                scaled = self._scaled(clean)
            grads = _add(grads, tape.gradient(scaled, variables))
            self.calls["full"] += 1
        self._apply(grads, variables)
        return loss, logits

    def _trades_loss(self, x, adv, y):
        import tensorflow as tf

        logits = self.model(x, training=True)
        clean = tf.nn.softmax(logits)
        adv_log = tf.nn.log_softmax(self.model(adv, training=True))
        kl = tf.reduce_sum(clean * (tf.math.log(clean + 1e-12) - adv_log)) / tf.cast(
            tf.shape(x)[0], tf.float32
        )
        return cross_entropy(y, logits) + self.beta * kl, logits

    def _trades_adversary(self, x):
        """TRADES' PGD on KL(f(x) || f(x + eta)) from `eta = 0.001 N(0, 1)`, in inference mode."""
        import tensorflow as tf

        a = self.attack
        clean = tf.stop_gradient(tf.nn.softmax(self.model(x, training=False)))
        eta = project(x, 0.001 * tf.random.normal(tf.shape(x)), a.eps)
        for _ in range(a.steps):
            with tf.GradientTape() as tape:
                tape.watch(eta)
                adv_log = tf.nn.log_softmax(self.model(x + eta, training=False))
                kl = tf.reduce_sum(clean * (tf.math.log(clean + 1e-12) - adv_log))
            eta = project(x, eta + a.step * tf.sign(tape.gradient(kl, eta)), a.eps)
        return x + eta

    def _trades_step(self, x, y):
        import tensorflow as tf

        adv = self._trades_adversary(x)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, logits = self._trades_loss(x, adv, y)
            scaled = self._scaled(loss)
        self._apply(tape.gradient(scaled, variables), variables)
        return loss, logits

    def _trades_yopo_step(self, x, y):
        """TRADES+YOPO (docs/papers.md#yopo-trades): YOPO's inner loop on the summed KL builds eta; the
        Hamiltonian gradients are discarded and the weights take one step on CE(clean) + beta KL."""
        import tensorflow as tf

        a = self.attack
        clean = tf.stop_gradient(tf.nn.softmax(self.model(x, training=False)))
        eta = project(x, 0.001 * tf.random.normal(tf.shape(x)), a.eps)
        for _ in range(a.m):
            with tf.GradientTape() as tape:
                z = self.first(x + eta, training=False)
                adv_log = tf.nn.log_softmax(self.rest(z, training=False))
                kl = tf.reduce_sum(clean * (tf.math.log(clean + 1e-12) - adv_log))
            p = -tape.gradient(kl, z)
            eta = self._first_layer_steps(x, eta, p, training=False)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, logits = self._trades_loss(x, x + eta, y)
            scaled = self._scaled(loss)
        self._apply(tape.gradient(scaled, variables), variables)
        return loss, logits
