"""Attacks and adversarial training, YOPO's faithfulness tests of docs/papers.md#yopo-tests (issue 3)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from odezoo.adversarial import (
    FIRST_LAYER_RULES,
    AdversarialTrainer,
    Attack,
    pgd,
    project,
    robust_evaluate,
    split_model,
)
from odezoo.errors import OdezooError


def tiny_cnn(seed=0, first_bias=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=first_bias, name="conv1")(inputs)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(6, 3, name="conv2")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="tiny")


def batch(seed=0, size=6):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (size, 8, 8, 1)).astype("float32"), rng.integers(0, 3, size)


def ce(model, x, y):
    logits = model(x, training=True)
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def test_yopo_1_1_equals_one_pgd_step_from_the_same_start():
    model = tiny_cnn()
    x, y = batch()
    trainer = AdversarialTrainer(
        model, method="yopo", attack=Attack(0.1, 0.02, m=1, n=1), first_layer="relu1"
    )
    eta0 = tf.random.uniform(x.shape, -0.1, 0.1, seed=1)
    eta0 = project(tf.constant(x), eta0, 0.1)
    yopo_eta, *_ = trainer.yopo_perturbation(tf.constant(x), y, eta0)
    with tf.GradientTape() as tape:
        tape.watch(eta0)
        loss = ce(model, x + eta0, y)
    pgd_eta = project(tf.constant(x), eta0 + 0.02 * tf.sign(tape.gradient(loss, eta0)), 0.1)
    np.testing.assert_array_equal(yopo_eta.numpy(), pgd_eta.numpy())


def test_first_layer_gradient_from_the_hamiltonian_equals_backprop_when_eta_is_fixed():
    model = tiny_cnn()
    x, y = batch()
    trainer = AdversarialTrainer(
        model, method="yopo", attack=Attack(0.1, 0.02, m=1, n=0), first_layer="relu1"
    )
    eta = tf.constant(np.random.default_rng(2).uniform(-0.05, 0.05, x.shape).astype("float32"))
    _, rest_grads, first_grads, _, _ = trainer.yopo_perturbation(tf.constant(x), y, eta)
    first, rest = split_model(model, "relu1")
    with tf.GradientTape() as tape:
        loss = ce(model, x + eta, y)
    want = tape.gradient(loss, first.trainable_variables + rest.trainable_variables)
    for got, ref in zip(first_grads + rest_grads, want):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-6)


def test_rest_gradient_over_m_passes_is_the_sum_of_m_separate_gradients():
    model = tiny_cnn()
    x, y = batch()
    attack = Attack(0.1, 0.02, m=3, n=2)
    trainer = AdversarialTrainer(model, method="yopo", attack=attack, first_layer="relu1")
    eta0 = tf.constant(np.random.default_rng(3).uniform(-0.1, 0.1, x.shape).astype("float32"))
    _, rest_grads, _, _, _ = trainer.yopo_perturbation(tf.constant(x), y, eta0)
    # replay the passes one by one: pass j starts from the eta the previous inner loop left
    one = AdversarialTrainer(model, method="yopo", attack=Attack(0.1, 0.02, m=1, n=2), first_layer="relu1")
    eta, total = eta0, None
    for _ in range(3):
        new_eta, grads, _, _, _ = one.yopo_perturbation(tf.constant(x), y, eta)
        total = grads if total is None else [t + g for t, g in zip(total, grads)]
        eta = new_eta
    for got, ref in zip(rest_grads, total):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def _yopo_gradients_by_hand(model, x, y, eta, *, m, n, eps, step):
    """Per pass j of YOPO-m-n, with explicit tapes: the full-pass gradients `(G_j of f0, G_j of g)`
    at `x + eta_{j-1}` and the Hamiltonian part `h_j = d/dW0 <dl_j/dz, f0(clip(x + eta_j))>`, eta_j
    being n ascent steps on that linearised loss from eta_{j-1}."""
    first, rest = split_model(model, "relu1")
    full_first, full_rest, hamiltonian = [], [], []
    for _ in range(m):
        with tf.GradientTape() as tape:
            z = first(x + eta, training=True)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y, rest(z, training=True), from_logits=True)
            )
        grads = tape.gradient(loss, [*first.trainable_variables, *rest.trainable_variables, z])
        dz = grads.pop()
        full_first.append(grads[: len(first.trainable_variables)])
        full_rest.append(grads[len(first.trainable_variables) :])
        for _ in range(n):
            with tf.GradientTape() as tape:
                tape.watch(eta)
                value = tf.reduce_sum(first(tf.clip_by_value(x + eta, 0.0, 1.0), training=True) * dz)
            eta = project(x, eta + step * tf.sign(tape.gradient(value, eta)), eps)
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(first(tf.clip_by_value(x + eta, 0.0, 1.0), training=True) * dz)
        hamiltonian.append(tape.gradient(value, first.trainable_variables))
    return first, rest, full_first, full_rest, hamiltonian


@pytest.mark.parametrize("rule", FIRST_LAYER_RULES)
def test_first_layer_update_is_the_hamiltonian_part_plus_the_full_pass_gradients_of_its_rule(rule):
    """One YOPO-3-2 step under SGD(1) applies `W - W_new` = sum_j h_j for f0 under the paper's rule,
    plus sum_j G_j under "official", plus G_2 + G_3 for the kernel and sum_j G_j for the bias under
    "official_torch2"; g always gets sum_j G_j (docs/papers.md#yopo-hamiltonian). The random start is replayed
    from the seed; h_j and G_j come from `_yopo_gradients_by_hand`."""
    model = tiny_cnn(first_bias=True)
    x, y = batch()
    m, n, eps, step = 3, 2, 0.1, 0.02
    tf.random.set_seed(5)
    eta0 = tf.random.uniform(x.shape, -eps, eps)
    first, rest, full_first, full_rest, hamiltonian = _yopo_gradients_by_hand(
        model, tf.constant(x), y, eta0, m=m, n=n, eps=eps, step=step
    )
    kept = {  # the passes (from 0) whose full-pass gradient f0's kernel and bias take
        "paper": ((), ()),
        "official": (range(m), range(m)),
        "official_torch2": (range(1, m), range(m)),
    }[rule]
    want = {}
    for i, variable in enumerate(first.trainable_variables):
        passes = kept[variable.name == "bias"]
        want[variable.path] = sum(h[i] for h in hamiltonian) + sum(full_first[j][i] for j in passes)
    for i, variable in enumerate(rest.trainable_variables):
        want[variable.path] = sum(g[i] for g in full_rest)
    assert {v.name for v in first.trainable_variables} == {"kernel", "bias"}
    # the three rules differ in every f0 variable by more than the tolerance
    assert all(float(tf.reduce_max(tf.abs(g))) > 1e-3 for g in full_first[0])

    trainer = AdversarialTrainer(
        model, method="yopo", attack=Attack(eps, step, m=m, n=n), first_layer="relu1", first_layer_rule=rule
    )
    trainer.compile(optimizer=keras.optimizers.SGD(1.0), run_eagerly=True)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    tf.random.set_seed(5)  # the trainer draws the same eta0
    trainer.train_on_batch(x, y)
    for variable in model.trainable_variables:
        applied = before[variable.path] - variable.numpy()
        np.testing.assert_allclose(applied, want[variable.path], rtol=1e-5, atol=1e-6, err_msg=variable.path)


def test_first_layer_rules_other_than_the_papers_are_yopo_only_and_unknown_ones_refused():
    with pytest.raises(OdezooError, match=r"Unknown first_layer_rule 'pytorch'; choose one of \('paper'"):
        AdversarialTrainer(tiny_cnn(), method="yopo", attack=Attack(0.1, 0.01), first_layer="relu1",
                           first_layer_rule="pytorch")  # fmt: skip
    with pytest.raises(OdezooError, match="'yopo' only. Received: method='pgd', first_layer_rule='official'"):
        AdversarialTrainer(tiny_cnn(), method="pgd", attack=Attack(0.1, 0.01), first_layer_rule="official")


def test_clean_weight_adds_that_multiple_of_the_clean_cross_entropy_gradient_in_one_more_pass():
    """Under SGD(1), YOPO with `clean_weight=w` applies YOPO's update (same random start) plus
    `w * dCE(model(x), y)/dtheta` at the weights before the step, and runs m + 1 full passes."""
    x, y = batch()
    applied = {}
    for weight in (0.0, 0.5):
        model = tiny_cnn(first_bias=True)
        trainer = AdversarialTrainer(model, method="yopo", attack=Attack(0.1, 0.02, m=2, n=2),
                                     first_layer="relu1", clean_weight=weight)  # fmt: skip
        trainer.compile(optimizer=keras.optimizers.SGD(1.0), run_eagerly=True)
        before = [v.numpy() for v in model.trainable_variables]
        if weight:
            with tf.GradientTape() as tape:
                clean = ce(model, x, y)
            want = [weight * g.numpy() for g in tape.gradient(clean, model.trainable_variables)]
        tf.random.set_seed(5)
        trainer.train_on_batch(x, y)
        applied[weight] = [b - v.numpy() for b, v in zip(before, model.trainable_variables)]
        assert trainer.calls["full"] == 2 + (weight > 0)
    assert all(np.abs(w).max() > 1e-3 for w in want)
    for with_clean, without, expected in zip(applied[0.5], applied[0.0], want):
        np.testing.assert_allclose(with_clean - without, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method, weight", [("pgd", 1.0), ("yopo", -1.0)])
def test_clean_weight_is_yopo_only_and_not_negative(method, weight):
    with pytest.raises(OdezooError, match=f"Received: method='{method}', clean_weight={weight}"):
        AdversarialTrainer(tiny_cnn(), method=method, attack=Attack(0.1, 0.01), first_layer="relu1",
                           clean_weight=weight)  # fmt: skip


@pytest.mark.parametrize("method", ["natural", "yopo", "free"])
def test_clipnorm_scales_the_whole_update_to_that_global_norm(method):
    """Under SGD(1), the clipped step is the unclipped one times clipnorm / its global norm (a clip
    that acts: the unclipped step's norm is above clipnorm); `clipnorm=0` is refused."""
    x, y = batch()
    applied = {}
    for clipnorm in (None, 0.05):
        model = tiny_cnn(first_bias=True)
        trainer = AdversarialTrainer(model, method=method, attack=Attack(0.1, 0.02, m=1, n=2),
                                     first_layer="relu1", clipnorm=clipnorm)  # fmt: skip
        trainer.compile(optimizer=keras.optimizers.SGD(1.0), run_eagerly=True)
        before = [v.numpy() for v in model.trainable_variables]
        tf.random.set_seed(5)
        trainer.train_on_batch(x, y)
        applied[clipnorm] = [b - v.numpy() for b, v in zip(before, model.trainable_variables)]
    norm = np.sqrt(sum(np.sum(a**2) for a in applied[None]))
    assert norm > 0.1
    for clipped, unclipped in zip(applied[0.05], applied[None]):
        np.testing.assert_allclose(clipped, unclipped * 0.05 / norm, rtol=1e-4, atol=1e-7)
    with pytest.raises(OdezooError, match="clipnorm must be > 0 .or None: no clipping.. Received: 0"):
        AdversarialTrainer(tiny_cnn(), method="natural", attack=Attack(0.1, 0.01), clipnorm=0)


@pytest.mark.parametrize("method", ["natural", "pgd", "yopo", "trades_yopo"])
def test_a_loss_scale_leaves_every_methods_update_as_it_was(method):
    """Under `keras.optimizers.LossScaleOptimizer` (what `mixed_float16` uses) the loss is scaled by
    2^15 and the gradients unscaled, both exact in float32: the same update as the plain optimizer,
    clipping included (its bound scales too). A trainer that forgot to scale, or clipped the scaled
    gradient to the unscaled bound, would update differently."""
    x, y = batch()
    applied = []
    for optimizer in (
        keras.optimizers.SGD(1.0),
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1.0)),
    ):
        model = tiny_cnn(first_bias=True)
        trainer = AdversarialTrainer(model, method=method, attack=Attack(0.1, 0.02, m=2, n=2, steps=2),
                                     first_layer="relu1", clipnorm=0.05)  # fmt: skip
        trainer.compile(optimizer=optimizer, run_eagerly=True)
        before = [v.numpy() for v in model.trainable_variables]
        tf.random.set_seed(5)
        trainer.train_on_batch(x, y)
        applied.append([b - v.numpy() for b, v in zip(before, model.trainable_variables)])
    assert optimizer.scale_loss(1.0) == 2.0**15
    for scaled, plain in zip(*reversed(applied)):
        np.testing.assert_allclose(scaled, plain, rtol=1e-5, atol=1e-8)


def test_every_inner_step_stays_in_the_ball_and_the_box():
    model = tiny_cnn()
    x, y = batch()
    x[0, 0, 0, 0], x[0, 1, 1, 0] = 0.0, 1.0
    eps = 0.05
    for m, n in ((1, 1), (2, 3), (3, 5)):
        trainer = AdversarialTrainer(
            model, method="yopo", attack=Attack(eps, 0.02, m=m, n=n), first_layer="relu1"
        )
        eta, *_ = trainer.yopo_perturbation(tf.constant(x), y, tf.random.uniform(x.shape, -eps, eps))
        assert np.abs(eta.numpy()).max() <= eps + 1e-7
        adv = x + eta.numpy()
        assert adv.min() >= -1e-7 and adv.max() <= 1 + 1e-7


def test_calls_per_batch_count_each_first_layer_pass_once():
    model = tiny_cnn()
    x, y = batch()
    trainer = AdversarialTrainer(
        model, method="yopo", attack=Attack(0.1, 0.02, m=5, n=3), first_layer="relu1"
    )
    trainer.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    trainer.train_on_batch(x, y)
    assert trainer.calls == {"full": 5, "first": 3 + 4 * 2 + 1}  # passes 2-5 reuse their own f0 twice


@pytest.mark.parametrize("method", ["natural", "pgd", "free", "yopo", "trades", "trades_yopo"])
def test_every_method_trains_with_fit(method):
    model = tiny_cnn()
    x, y = batch(size=32)
    trainer = AdversarialTrainer(
        model, method=method, attack=Attack(0.05, 0.01, steps=2, m=2, n=2), first_layer="relu1"
    )
    trainer.compile(optimizer=keras.optimizers.SGD(0.05), metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    history = trainer.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all() and "accuracy" in history
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_pgd_and_robust_evaluation():
    model = tiny_cnn()
    x, y = batch(size=20)
    zero = robust_evaluate(model, (x, y), eps=1e-9, step=1e-9, steps=3)
    assert zero["clean_accuracy"] == zero["robust_accuracy"]  # (almost) no budget, no change
    adv = pgd(model, x, y, eps=0.1, step=0.02, steps=5)
    assert np.abs(adv.numpy() - x).max() <= 0.1 + 1e-6
    assert ce(model, adv, y) > ce(model, x, y)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eps=0.0, step=0.01, steps=1), r"eps must be in \(0, 1\]"),
        (dict(eps=2.0, step=0.01, steps=1), r"eps must be in \(0, 1\]"),
        (dict(eps=0.1, step=0.2, steps=1), r"step size must be in \(0, eps\]"),
        (dict(eps=0.1, step=0.01, steps=0), "`steps` must be >= 1. Received: steps=0"),
    ],
)
def test_bad_budgets_are_refused(kwargs, message):
    x, y = batch()
    with pytest.raises(OdezooError, match=message):
        robust_evaluate(tiny_cnn(), (x, y), **kwargs)


def test_bad_models_and_images_are_refused():
    x, y = batch()
    with pytest.raises(OdezooError, match=r"images in \[0, 1\].*normalisation into the model"):
        robust_evaluate(tiny_cnn(), (x * 255, y), eps=0.1, step=0.01, steps=1)
    with pytest.raises(OdezooError, match="has no layer 'conv0'. Its layers: .*conv1, relu1"):
        split_model(tiny_cnn(), "conv0")
    a, b = keras.Input((4,)), keras.Input((4,))
    two = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
    with pytest.raises(OdezooError, match="needs a model with one input .* has 2"):
        AdversarialTrainer(two, method="pgd", attack=Attack(0.1, 0.01))


def _eval_sample(capsys, *flags):
    """`odezoo eval lm_resnet20_fashion_mnist` on 64 bundled images with `flags`, its JSON output."""
    import json

    from odezoo import cli

    argv = ["eval", "lm_resnet20_fashion_mnist", "--split", "sample", "--limit", "64", *flags]
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # PGD-20 over 64 images: about a minute on 2 cores
def test_a_naturally_trained_preset_has_near_zero_pgd20_accuracy_and_tiny_eps_changes_nothing(capsys):
    attacked = _eval_sample(capsys, "--attack", "pgd", "--steps", "20")
    assert attacked["accuracy"] > 0.9 and attacked["robust_accuracy"] < 0.05
    assert attacked["attack"].startswith("PGD-20, L-inf eps=0.1, step=0.01")
    tiny = _eval_sample(capsys, "--attack", "pgd", "--eps", "1e-9", "--step", "1e-9", "--steps", "2")
    assert tiny["robust_accuracy"] == tiny["accuracy"] == attacked["accuracy"]
    plain = _eval_sample(capsys)  # the attack adds to a plain evaluation's keys and values
    assert {k: attacked[k] for k in plain} == plain


def test_attack_flags_without_an_attack_and_bad_budgets_are_refused(capsys):
    from odezoo import cli

    assert cli.main(["eval", "lm_resnet20_fashion_mnist", "--split", "sample", "--eps", "0.1"]) == 2
    assert "add --attack pgd" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "eval",
                "lm_resnet20_fashion_mnist",
                "--split",
                "sample",
                "--attack",
                "pgd",
                "--eps",
                "0.05",
                "--step",
                "0.1",
            ]
        )
        == 2
    )
    assert "step size must be in (0, eps]" in capsys.readouterr().err
