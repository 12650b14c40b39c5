"""Macaron-BERT (docs/papers.md#macaron-bert, #macaron-checkpoints, #macaron-tests): the parameter identity
(+d per layer with non-affine LayerNorms), the sub-layer order FFN(ReLU)/2 → attention → FFN(GELU)/2 against a
NumPy reference, the segment table's zero row, the tied masked-LM logits, right padding, the classifier head
swap and the input checks."""

import math

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf
from test_macaron import _attention, _randomize, _w  # the translation model's NumPy reference

from odezoo.errors import OdezooError
from odezoo.models import MacaronBert
from odezoo.models.macaron.macaron_bert import CONFIGS
from odezoo.models.macaron.macaron_layers import MacaronEncoderLayer, erf_gelu

TINY = {"vocabulary_size": 20, "num_layers": 2, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16,
        "max_positions": 16, "dropout": 0.0, "attention_dropout": 0.0}  # fmt: skip
X = {  # right-padded: <cls> = 5 first, then a first (segment 1) and a second sentence (segment 0)
    "token_ids": np.array([[5, 7, 8, 2, 9, 2, 1], [5, 10, 11, 12, 2, 13, 2]], "int32"),
    "segment_ids": np.array([[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]], "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]], "int32"),
}


def _model(scheme="strang", seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return MacaronBert(**{**TINY, "scheme": scheme, **kwargs})


def _out(model, x=X, training=False):
    return np.asarray(model(x, training=training))


def _bert_parameters(vocabulary_size, num_layers, hidden_dim, intermediate_dim):
    """BERT (Lie–Trotter) counted by hand: token V·E and segment 2·E embeddings; per layer attention
    4(E² + E) and FFN 2·E·F + F + E (LayerNorms without parameters); the masked-LM head's Linear E² + E
    and affine LayerNorm 2E (its output is the tied embedding)."""
    e, f = hidden_dim, intermediate_dim
    layer = 4 * (e * e + e) + 2 * e * f + f + e
    return vocabulary_size * e + 2 * e + num_layers * layer + e * e + e + 2 * e


def test_parameter_identity_plus_d_per_layer():
    """docs/papers.md#macaron-test-1 with non-affine LayerNorms: Macaron = BERT + d per layer (one more FFN
    output bias); BERT-base: 12 x 768 = +9,216, and BERT itself is the count by hand."""
    strang, baseline = (_model(scheme).count_params() for scheme in ("strang", "lie_trotter"))
    assert strang - baseline == TINY["num_layers"] * TINY["hidden_dim"]
    assert baseline == _bert_parameters(20, 2, 8, 16)
    config = CONFIGS["bert_base"]
    strang, baseline = (
        MacaronBert(vocabulary_size=8, scheme=scheme, **config).count_params()
        for scheme in ("strang", "lie_trotter")
    )
    assert strang - baseline == 9_216 == config["num_layers"] * config["hidden_dim"]
    assert baseline == _bert_parameters(8, 12, 768, 3072)


def test_layer_norms_have_no_weights_but_the_masked_lm_heads():
    model = _model()
    norms = [
        sub
        for layer in model.encoder_layers
        for sub in (layer.macaron_ffn_norm, layer.self_attention_norm, layer.ffn_norm)
    ]
    assert all(not norm.weights for norm in [*norms, model.encoder_norm])
    assert sorted(w.path for w in model.mlm_norm.weights) == ["mlm_norm/beta", "mlm_norm/gamma"]


def _ln(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def _ffn(ffn, x, activation):
    (w1, b1), (w2, b2) = _w(ffn.inner_dense), _w(ffn.output_dense)
    return activation(x @ w1 + b1) @ w2 + b2


def _relu(x):
    return np.maximum(x, 0.0)


def _gelu(x):
    return 0.5 * x * (1.0 + scipy.special.erf(x / math.sqrt(2.0)))


def _reference(model, x, macaron=(_relu, 0.5), attention_factor=1.0, main=(_gelu, 0.5)):
    """docs/papers.md#macaron-bert in NumPy: the embeddings, per layer FFN_a(LN(x)) → attention → FFN_b(LN(x))
    with the given activations and factors (Lie–Trotter: no FFN_a, GELU FFN of factor 1), the final LayerNorm
    and the tied masked-LM head."""
    ids, segments, mask = x["token_ids"], x["segment_ids"], x["padding_mask"]
    table = np.asarray(model.token_embedding.embeddings)
    positions = model.position_embedding.table[1 + np.cumsum(mask, 1) * mask]
    segment_table = np.asarray(model.segment_embedding.embeddings)
    h = math.sqrt(model.hidden_dim) * table[ids] + positions + segment_table[segments]
    allowed = mask.astype(bool)[:, None, None, :]
    main = main if model.scheme == "strang" else (_gelu, 1.0)
    for layer in model.encoder_layers:
        if model.scheme == "strang":
            h = h + macaron[1] * _ffn(layer.macaron_ffn, _ln(h), macaron[0])
        h = h + attention_factor * _attention(layer.self_attention, _ln(h), _ln(h), allowed)
        h = h + main[1] * _ffn(layer.ffn, _ln(h), main[0])
    (w, b), norm = _w(model.mlm_dense), model.mlm_norm
    z = _ln(_gelu(_ln(h) @ w + b)) * np.asarray(norm.gamma) + np.asarray(norm.beta)
    return z @ table.T


def test_erf_gelu_is_the_exact_gelu():
    """The fork's `x/2 · (1 + erf(x/√2))` is Keras' exact `gelu` to float32 rounding, 1e-6 (it only avoids
    the `Erfc` op ONNX lacks; below x = -5 its `1 + erf` cancels to 0, as in the fork's PyTorch), unlike
    the tanh approximation, which is off by up to 5e-4."""
    x = np.linspace(-8, 8, 100_001).astype("float32")
    exact = np.asarray(keras.activations.gelu(x, approximate=False))
    assert np.abs(np.asarray(erf_gelu(x)) - exact).max() <= 1e-6  # measured: 9.5e-7, 1 ulp at x = 8
    assert np.abs(np.asarray(keras.activations.gelu(x, approximate=True)) - exact).max() > 1e-4


@pytest.mark.parametrize("scheme", ["strang", "lie_trotter"])
def test_forward_follows_the_equations_relu_attention_gelu_with_half_steps(scheme):
    """FFN(ReLU)/2 → attention → FFN(GELU)/2 (BERT: attention → FFN(GELU)), logits tied to the token
    embedding; swapping the activations or moving the 1/2 to the attention branch does not match."""
    model = _model(scheme, dtype="float64")
    _randomize(model)
    model.segment_embedding.embeddings[1].assign(np.zeros(8))  # the padding row (see the next test)
    out = _out(model)
    np.testing.assert_allclose(out, _reference(model, X), atol=1e-7)
    if scheme == "strang":
        swapped = _reference(model, X, macaron=(_gelu, 0.5), main=(_relu, 0.5))
        assert np.abs(swapped - out).max() > 1e-3
        assert np.abs(_reference(model, X, attention_factor=0.5, main=(_gelu, 1.0)) - out).max() > 1e-3
        assert [layer.ffn.activation for layer in model.encoder_layers] == [erf_gelu] * 2
        assert model.encoder_layers[0].ffn.intermediate_dim == 8  # each FFN d_ff / 2
    else:
        assert not hasattr(model.encoder_layers[0], "macaron_ffn")
        assert model.encoder_layers[0].ffn.intermediate_dim == 16


def test_segment_row_one_is_zero_and_stays_out_of_the_sum():
    """fairseq's `Embedding(2, E, padding_idx=1)`: row 1 (the first sentence) starts at 0, adds nothing
    whatever its value and gets no gradient; row 0 (the second sentence) does change the output."""
    model = _model()
    table = np.asarray(model.segment_embedding.embeddings)
    assert np.all(table[1] == 0) and np.all(table[0] != 0)
    before = _out(model)
    model.segment_embedding.embeddings[1].assign(np.ones(8))
    np.testing.assert_array_equal(_out(model), before)
    with_second = dict(X, segment_ids=np.zeros_like(X["segment_ids"]))
    assert np.abs(_out(model, with_second) - before).max() > 1e-3
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(model(X) ** 2)
    gradient = np.asarray(tf.convert_to_tensor(tape.gradient(loss, model.segment_embedding.embeddings)))
    assert np.all(gradient[1] == 0) and np.any(gradient[0] != 0)


def test_masked_lm_logits_are_tied_to_the_token_embedding():
    model = _model()
    features = keras.Model(model.inputs, model.mlm_norm.output)(X)
    table = np.asarray(model.token_embedding.embeddings)
    np.testing.assert_allclose(_out(model), np.asarray(features) @ table.T, atol=1e-5)
    assert sum("token_embedding" in w.path for w in model.weights) == 1  # no separate output matrix


@pytest.mark.parametrize("num_classes", [None, 3])
def test_right_padding_leaves_the_real_positions_unchanged(num_classes):
    model = _model(num_classes=num_classes)
    one = {name: value[1:, :5] for name, value in X.items()}  # <cls> w w w </s>, no padding
    padded = {
        "token_ids": np.pad(one["token_ids"], ((0, 0), (0, 3)), constant_values=1),
        "segment_ids": np.pad(one["segment_ids"], ((0, 0), (0, 3))),
        "padding_mask": np.pad(one["padding_mask"], ((0, 0), (0, 3))),
    }
    expected, out = _out(model, one), _out(model, padded)
    np.testing.assert_allclose(out if num_classes else out[:, :5], expected, atol=1e-5)


def test_without_dropout_outputs_are_deterministic():
    model = _model()
    np.testing.assert_array_equal(_out(model), _out(model))
    np.testing.assert_allclose(_out(model, training=True), _out(model), atol=1e-6)
    dropped = _model(dropout=0.3)
    assert np.abs(_out(dropped, training=True) - _out(dropped)).max() > 1e-3


def test_classifier_reads_the_cls_position_and_starts_at_zero():
    model = _model(num_classes=1)  # regression (STS-B)
    assert model.TASK == model.task.name == "text_classification"
    np.testing.assert_array_equal(_out(model), np.zeros((2, 1)))
    _randomize(model.head)
    later = dict(X, token_ids=np.where(np.arange(7) > 0, 3, X["token_ids"]))  # <cls> kept, rest changed
    encoder = keras.Model(model.inputs, model.encoder_norm.output)
    (kernel, bias), h = _w(model.head), np.asarray(encoder(later))
    np.testing.assert_allclose(_out(model, later), h[:, 0] @ kernel + bias, atol=1e-5)


def test_from_pretrained_with_num_classes_keeps_the_encoder(tmp_path):
    """A masked-LM preset loaded with `num_classes=K` keeps every encoder weight and gets a new (zero)
    head; a classifier preset loaded with another K likewise; `freeze_trunk` trains only the head."""
    mlm = _model()
    _randomize(mlm)
    folder = mlm.save_pretrained(tmp_path / "mlm")
    assert "pipeline_tag: fill-mask" in (folder / "README.md").read_text()
    classifier = MacaronBert.from_pretrained(folder, num_classes=3)
    assert classifier.TASK == "text_classification" and _out(classifier).shape == (2, 3)
    source = {w.path: np.asarray(w) for w in mlm.weights}
    for w in classifier.weights:
        expected = np.zeros(w.shape) if w.path.startswith("head/") else source[w.path]
        np.testing.assert_array_equal(np.asarray(w), expected)

    _randomize(classifier.head, seed=2)
    folder = classifier.save_pretrained(tmp_path / "cls")
    assert "pipeline_tag: text-classification" in (folder / "README.md").read_text()
    again = MacaronBert.from_pretrained(folder, num_classes=2)
    for w, kept in zip(again.weights, classifier.weights):
        if not w.path.startswith("head/"):
            np.testing.assert_array_equal(np.asarray(w), np.asarray(kept))
    again.freeze_trunk()
    assert [w.path for w in again.trainable_weights] == ["head/kernel", "head/bias"]


def test_initialisation_follows_the_bert_fork():
    """FFN kernels Kaiming-normal (std sqrt(1/fan_in) inner, sqrt(2/fan_in) output, each layer its own
    draw), biases 0; token embeddings N(0, 1/E) with a zero `<pad>` row."""
    model = _model(hidden_dim=64, num_heads=2, intermediate_dim=256)
    first, second = model.encoder_layers
    for ffn in (first.macaron_ffn, first.ffn):
        inner, output = np.asarray(ffn.inner_dense.kernel), np.asarray(ffn.output_dense.kernel)
        assert abs(inner.std() / 64**-0.5 - 1) < 0.1 and abs(output.std() / (2 / 128) ** 0.5 - 1) < 0.1
        assert not np.asarray(ffn.inner_dense.bias).any() and not np.asarray(ffn.output_dense.bias).any()
    assert not np.allclose(first.ffn.inner_dense.kernel, second.ffn.inner_dense.kernel)
    embeddings = np.asarray(model.token_embedding.embeddings)
    assert not embeddings[1].any() and abs(embeddings[2:].std() / 64**-0.5 - 1) < 0.2


@pytest.mark.parametrize(
    "change,message",
    [
        ({"token_ids": X["token_ids"].astype("float32")}, "takes integer token ids"),
        ({"token_ids": X["token_ids"] + 15}, "a vocabulary of 20 entries"),
        ({"segment_ids": X["segment_ids"] + 1}, "0/1 segment ids"),
        ({"padding_mask": X["padding_mask"] * 3}, "0/1 padding mask"),
    ],
)
def test_inputs_are_checked_with_what_was_received(change, message):
    with pytest.raises(OdezooError, match=message):
        _model()({**X, **change})


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"pad_id": 20}, "pad_id"),
        ({"scheme": "euler"}, "scheme"),
        ({"intermediate_dim": 15}, "must be even"),
    ],
)
def test_bad_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_encoder_layer_defaults_keep_the_translation_layer():
    """The BERT options are opt-in: by default both FFNs are ReLU and the LayerNorms affine."""
    layer = MacaronEncoderLayer(2, 16)
    layer.build((None, None, 8))
    assert (layer.macaron_activation, layer.activation, layer.norm_affine) == ("relu", "relu", True)
    assert len(layer.self_attention_norm.weights) == 2
