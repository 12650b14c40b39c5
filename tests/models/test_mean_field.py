"""Mean-field ResNet: the identities of docs/papers.md#mean-field-tests (depth consistency, width invariance,
permutation), block reordering in training, the messages of bad arguments, and the family's commands."""

import itertools
import json

import keras
import numpy as np
import pytest

from odezoo.cli import main
from odezoo.models import MeanFieldResNet
from odezoo.models.mean_field.mean_field_eval import order_invariance, random_orders
from odezoo.models.mean_field.mean_field_layers import MeanFieldBlocks

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 1, (5, 4, 4, 1))


def _model(num_blocks=4, width=6, *, variant="dense", alpha=1.0, seed=0, **kwargs):
    """A float64 model on 4x4 images whose block outputs are scaled by `alpha` (random weights)."""
    keras.utils.set_random_seed(seed)
    model = MeanFieldResNet(
        num_blocks=num_blocks, width=width, channels=3, image_shape=(4, 4, 1), variant=variant,
        stem_strides=(1,), dtype="float64", **kwargs,
    )  # fmt: skip
    blocks = model.get_layer("blocks")
    blocks.output_kernel.assign(blocks.output_kernel * alpha)
    return model


def _out(model, images=IMAGES):
    return np.asarray(model(images, training=False))


@pytest.mark.parametrize("variant", ["dense", "conv"])
def test_widening_duplicated_particles_with_half_the_average_is_exactly_the_same_function(variant):
    model = _model(variant=variant)
    for factor in (2, 3):
        wide = model.widen(factor)
        assert wide.width == 6 * factor
        assert wide.count_params() > model.count_params()
        np.testing.assert_allclose(_out(wide), _out(model), rtol=0, atol=1e-12)
    # standard scaling: the output weights absorb the 1/factor
    standard = _model(variant=variant, scaling="standard", alpha=0.3)
    np.testing.assert_allclose(_out(standard.widen(2)), _out(standard), rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", ["dense", "conv"])
def test_growing_depth_is_forward_euler_on_a_finer_grid_first_order_convergence(variant):
    """Repeat every block k times (step 1/(kL)): the output converges like 1/L, each doubling
    halving the change. Blocks of size O(1) (alpha = 3 on 6 particles) make the flow nonlinear."""
    model = _model(variant=variant, alpha=3.0)
    outputs = [_out(model.grow(2**k)) for k in range(7)]
    changes = [np.abs(b - a).max() for a, b in zip(outputs, outputs[1:])]
    ratios = np.array(changes[:-1]) / np.array(changes[1:])
    assert changes[0] > 1e-3, changes  # the flow is not trivially linear
    np.testing.assert_allclose(ratios[-3:], 2.0, rtol=0.1)
    assert model.grow(4).num_blocks == 16


def test_growing_a_standard_resnet_divides_its_blocks_so_the_limit_is_the_same_flow():
    model = _model(scaling="standard", alpha=0.2)
    outputs = [_out(model.grow(2**k)) for k in range(5)]
    changes = [np.abs(b - a).max() for a, b in zip(outputs, outputs[1:])]
    np.testing.assert_allclose(np.array(changes[:-1]) / np.array(changes[1:]), 2.0, rtol=0.15)


def test_block_order_only_matters_at_second_order():
    """Scaling every block's output weights by alpha: the deviation from X_0 shrinks like alpha,
    the gap between two orders like alpha^2, and the ensemble term X_0 + (1/L) sum_l f_l(X_0)
    is order-free, so it matches every order to O(alpha^2)."""
    reverse = [3, 2, 1, 0]
    deviation, gap, ensemble_error = [], [], []
    for alpha in (0.4, 0.2, 0.1, 0.05):
        model = _model(alpha=alpha, num_classes=None)
        x0 = _out(_model(alpha=0.0, num_classes=None))
        out = _out(model)
        deviation.append(np.abs(out - x0).max())
        gap.append(np.abs(_out(model.reorder_blocks(reverse)) - out).max())
        blocks = model.get_layer("blocks")
        ensemble = x0 + blocks.step * sum(np.asarray(blocks.block(x0, i)) for i in range(4))
        ensemble_error.append(np.abs(out - ensemble).max())
    assert gap[0] > 1e-6  # the order matters at all
    np.testing.assert_allclose(np.array(deviation[:-1]) / deviation[1:], 2.0, rtol=0.1)
    np.testing.assert_allclose(np.array(gap[:-1]) / gap[1:], 4.0, rtol=0.15)
    np.testing.assert_allclose(np.array(ensemble_error[:-1]) / ensemble_error[1:], 4.0, rtol=0.15)


def test_reordering_moves_weights_not_values_and_its_inverse_restores_the_model():
    model = _model(alpha=2.0)
    permutation = [2, 0, 3, 1]
    reordered = model.reorder_blocks(permutation)
    kernel = model.get_layer("blocks").hidden_kernel.numpy()
    np.testing.assert_array_equal(reordered.get_layer("blocks").hidden_kernel.numpy(), kernel[permutation])
    np.testing.assert_array_equal(
        reordered.get_layer("embed").kernel.numpy(), model.get_layer("embed").kernel
    )
    assert np.abs(_out(reordered) - _out(model)).max() > 1e-6
    np.testing.assert_array_equal(_out(reordered.reorder_blocks(np.argsort(permutation))), _out(model))
    np.testing.assert_array_equal(_out(model.reorder_blocks(range(4))), _out(model))


def test_shuffled_training_runs_the_blocks_in_a_random_order_and_changes_nothing_else():
    """In training every call runs one of the L! orders (and over many calls, several of them);
    at inference the shuffling model is exactly the unshuffled one."""
    model = _model(num_blocks=3, alpha=2.0, shuffle_blocks=True)
    plain = _model(num_blocks=3, alpha=2.0)
    np.testing.assert_array_equal(_out(model), _out(plain))
    by_order = {p: _out(plain.reorder_blocks(p)) for p in itertools.permutations(range(3))}
    seen = set()
    for _ in range(30):
        out = np.asarray(model(IMAGES, training=True))
        matches = [p for p, expected in by_order.items() if np.allclose(out, expected, rtol=0, atol=1e-12)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 4


def test_the_standard_resnet_is_the_same_code_without_the_factor():
    mean_field = _model(alpha=0.5)
    standard = _model(scaling="standard")
    standard.set_weights(mean_field.get_weights())
    blocks = standard.get_layer("blocks")
    blocks.output_kernel.assign(blocks.output_kernel / (4 * 6))
    np.testing.assert_allclose(_out(standard), _out(mean_field), rtol=1e-12, atol=1e-14)
    assert mean_field.get_layer("blocks").step == 1 / 24 and blocks.step == 1.0


def test_parameter_count_depends_on_L_and_M_only_through_L_times_M():
    """Each block holds M particles of (k^2 C + 1 + C) numbers; the scaling adds none."""

    def blocks_params(model):
        return model.get_layer("blocks").count_params()

    for variant, per_particle in (("dense", 3 + 1 + 3), ("conv", 9 * 3 + 1 + 3)):
        sizes = {blocks_params(_model(L, 512 // L, variant=variant)) for L in (2, 4, 8, 16)}
        assert sizes == {512 * per_particle}
        assert blocks_params(_model(variant=variant, scaling="standard")) == 24 * per_particle


def test_mean_field_initialisation_does_not_depend_on_L_or_M():
    """Particles are i.i.d. with a law fixed in advance: w ~ N(0, 1/fan_in), a ~ N(0, 1)."""
    stds = [
        (np.std(b.hidden_kernel.numpy()) * np.sqrt(9 * 3), np.std(b.output_kernel.numpy()))
        for b in (_model(L, M, variant="conv").get_layer("blocks") for L, M in ((2, 400), (20, 40)))
    ]
    np.testing.assert_allclose(stds, 1.0, rtol=0.1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.reorder_blocks([0, 1, 2]),
         "`permutation` must be a permutation of the 4 block indices 0..3. Received: permutation=[0, 1, 2]"),
        (lambda m: m.reorder_blocks([0, 1, 1, 3]), "Received: permutation=[0, 1, 1, 3]"),
        (lambda m: m.reorder_blocks([0.0, 1, 2, 3]), "Received: permutation=[0.0, 1, 2, 3]"),
        (lambda m: m.grow(0), "`depth_factor` must be a positive integer. Received: depth_factor=0"),
        (lambda m: m.grow(1.5), "`depth_factor` must be a positive integer. Received: depth_factor=1.5"),
        (lambda m: m.widen(True), "`width_factor` must be a positive integer. Received: width_factor=True"),
        (lambda m: m.widen(-2), "`width_factor` must be a positive integer. Received: width_factor=-2"),
    ],
)  # fmt: skip
def test_bad_reorderings_and_factors_get_one_clear_message(call, message):
    with pytest.raises(ValueError) as error:
        call(_model())
    assert message in str(error.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scaling": "1/L"}, "`scaling` must be one of ('mean_field', 'standard'). Received: scaling='1/L'"),
        ({"variant": "mlp"}, "`variant` must be one of ('conv', 'dense'). Received: variant='mlp'"),
        ({"num_blocks": 0}, "`num_blocks` must be a positive integer. Received: num_blocks=0"),
        ({"width": 2.5}, "`width` must be a positive integer. Received: width=2.5"),
    ],
)  # fmt: skip
def test_bad_constructor_arguments_get_one_clear_message(kwargs, message):
    with pytest.raises(ValueError) as error:
        MeanFieldResNet(**{"num_blocks": 2, "width": 2, "image_shape": (4, 4, 1), **kwargs})
    assert message in str(error.value)


def test_random_orders_are_seeded_permutations_other_than_the_identity():
    orders = random_orders(4, 20, seed=3)
    assert orders == random_orders(4, 20, seed=3)
    assert all(sorted(o) == [0, 1, 2, 3] and o != [0, 1, 2, 3] for o in orders)
    assert MeanFieldBlocks(2, 3, kernel_size=3).get_config()["kernel_size"] == 3


def test_the_block_orders_command_measures_a_preset_folder(capsys, tmp_path):
    """`odezoo block-orders` on a preset folder: the trained order's accuracy and `order_invariance`'s."""
    keras.utils.set_random_seed(0)
    model = MeanFieldResNet(num_blocks=3, width=3, channels=4, num_classes=10, name="tiny")
    folder = model.save_pretrained(tmp_path / "tiny", metadata={"dataset": "fashion_mnist"})
    assert main(["block-orders", str(folder), "--orders", "2", "--limit", "16", "--seed", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = order_invariance(model, "fashion_mnist", orders=2, seed=1, limit=16)
    assert {k: result[k] for k in expected} == expected
    assert result["dataset"] == "fashion_mnist" and 0 <= result["accuracy"] <= 1
    assert result["random_orders"] == random_orders(3, 2, seed=1)


def test_the_family_commands_refuse_what_they_cannot_measure_in_one_line(capsys, tmp_path):
    assert main(["block-orders", "lm_resnet20_fashion_mnist"]) == 2
    assert capsys.readouterr().err.strip() == (
        "odezoo block-orders: error: Block orders exist in MeanFieldResNet presets only; "
        "'lm_resnet20_fashion_mnist' is a LMResNet. `odezoo list` shows the presets with their models."
    )
    (tmp_path / "file.txt").write_text("")
    assert main(["continuum-limit", "--out", str(tmp_path / "file.txt")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"odezoo continuum-limit: error: --out {tmp_path / 'file.txt'} is a file; give a folder (it is "
        "created if missing)."
    )
