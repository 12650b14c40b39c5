"""Macaron Net: the faithfulness tests of docs/papers.md#macaron-tests (parameter counts, sub-layer order and
the 1/2 factors, the Lie–Trotter limit, splitting orders), fairseq's positions and init, masks, padding,
cached decoding, and the messages of bad arguments."""

import math

import keras
import numpy as np
import pytest
import scipy.linalg

from odezoo.errors import OdezooError
from odezoo.models import MacaronTransformer
from odezoo.models.macaron.macaron import CONFIGS, INPUT_NAMES
from odezoo.models.macaron.macaron_layers import (
    MacaronDecoderLayer,
    MacaronEncoderLayer,
    MultiHeadAttention,
    SinusoidalPositionEmbedding,
)

RNG = np.random.default_rng(0)
TINY = {"vocabulary_size": 20, "num_layers": 2, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16,
        "max_positions": 16, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}  # fmt: skip


def _model(scheme="strang", dtype="float32", seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return MacaronTransformer(**{**TINY, **kwargs}, scheme=scheme, dtype=dtype)


def _randomize(model_or_layer, scale=0.5, seed=1):
    """Every weight random (biases, LayerNorm shifts and scales included), so no term vanishes."""
    rng = np.random.default_rng(seed)
    for w in model_or_layer.weights:
        w.assign(rng.normal(0.0, scale, w.shape) + (1.0 if w.path.endswith("gamma") else 0.0))


def _inputs(source, target, source_mask=None, target_mask=None):
    source, target = np.asarray(source, "int32"), np.asarray(target, "int32")
    source_mask = np.ones_like(source) if source_mask is None else np.asarray(source_mask, "int32")
    target_mask = np.ones_like(target) if target_mask is None else np.asarray(target_mask, "int32")
    return dict(zip(INPUT_NAMES, (source, source_mask, target, target_mask)))


def _logits(model, x, training=False):
    return np.asarray(model(x, training=training))


X = _inputs(RNG.integers(3, 20, (2, 6)), np.concatenate([np.full((2, 1), 2), RNG.integers(3, 20, (2, 4))], 1))

# --- NumPy reference of the equations of docs/papers.md#macaron-layer ---


def _w(dense):
    return np.asarray(dense.kernel), np.asarray(dense.bias)


def _ln(x, norm):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * np.asarray(norm.gamma) + np.asarray(norm.beta)


def _ffn(ffn, x):
    (w1, b1), (w2, b2) = _w(ffn.inner_dense), _w(ffn.output_dense)
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def _attention(att, x, y, allowed):
    """softmax(q kᵀ / sqrt(d_h) where allowed) v per head, then the output projection."""
    heads, (batch, t, e) = att.num_heads, x.shape
    q, k, v = ((z @ w + b).reshape(batch, -1, heads, e // heads) for z, (w, b) in
               [(x, _w(att.query_dense)), (y, _w(att.key_dense)), (y, _w(att.value_dense))])  # fmt: skip
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(e // heads)
    scores = np.where(allowed, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    out = np.einsum("bhqk,bkhd->bqhd", p / p.sum(-1, keepdims=True), v).reshape(batch, t, e)
    w, b = _w(att.output_dense)
    return out @ w + b


ORDER = ("macaron_ffn", "self_attention", "cross_attention", "ffn")


def _reference(layer, x, encoder_output=None, order=ORDER, factor=None):
    """The layer's equations with its sub-layers run in `order` and the FFN factor `factor` (default:
    docs/papers.md#macaron-layer, 1/2 for Strang); a sub-layer the layer lacks (macaron_ffn, cross_attention)
    is skipped."""
    c = factor or (0.5 if layer.scheme == "strang" else 1.0)
    t = x.shape[1]
    causal = np.tril(np.ones((t, t), bool)) if encoder_output is not None else True
    branches = {
        "macaron_ffn": lambda h: c * _ffn(layer.macaron_ffn, h),
        "self_attention": lambda h: _attention(layer.self_attention, h, h, causal),
        "cross_attention": lambda h: _attention(layer.cross_attention, h, encoder_output, True),
        "ffn": lambda h: c * _ffn(layer.ffn, h),
    }
    for name in order:
        if hasattr(layer, name):
            norm, f = getattr(layer, f"{name}_norm"), branches[name]
            x = x + f(_ln(x, norm)) if layer.normalize_before else _ln(x + f(x), norm)
    return x


@pytest.mark.parametrize("scheme", ["strang", "lie_trotter"])
@pytest.mark.parametrize("normalize_before", [True, False])
@pytest.mark.parametrize("decoder", [False, True])
def test_layers_follow_the_equations_order_and_half_steps(scheme, normalize_before, decoder):
    """Encoder: FFN/2 → attention → FFN/2 (Strang) or attention → FFN (Lie–Trotter); decoder: FFN/2 →
    causal self-attention → cross-attention → FFN/2; the 1/2 only on the FFN branches; pre- or post-norm.
    The same reference with another order, or with the 1/2 moved, does not match."""
    kwargs = {"scheme": scheme, "normalize_before": normalize_before, "dtype": "float64"}
    layer = (MacaronDecoderLayer if decoder else MacaronEncoderLayer)(2, 16, **kwargs)
    x, encoder_output = RNG.normal(size=(2, 5, 8)), RNG.normal(size=(2, 3, 8))
    layer.build(x.shape)
    _randomize(layer)
    out = np.asarray(layer(x, encoder_output) if decoder else layer(x))
    np.testing.assert_allclose(out, _reference(layer, x, encoder_output if decoder else None), atol=1e-10)

    encoder_output = encoder_output if decoder else None
    swapped = ("macaron_ffn", "ffn", "self_attention", "cross_attention")  # attention after both FFNs
    assert np.abs(_reference(layer, x, encoder_output, order=swapped) - out).max() > 1e-2
    other_factor = 1.0 if scheme == "strang" else 0.5
    assert np.abs(_reference(layer, x, encoder_output, factor=other_factor) - out).max() > 1e-2


def _copy_trunk(strang, lie_trotter, ffn_output_scale):
    """Copies every weight of the Strang model that the Lie–Trotter model has (same paths), the second
    FFN's output weights and bias times `ffn_output_scale`."""
    source = {w.path: w for w in strang.weights}
    for w in lie_trotter.weights:
        scale = ffn_output_scale if "/ffn/output/" in w.path else 1.0
        w.assign(np.asarray(source[w.path]) * scale)


def test_zero_macaron_ffn_is_the_transformer_with_a_half_ffn_then_doubling_gives_the_baseline():
    """docs/papers.md#macaron-test-3, on the whole model: W2a = b2a = 0 leaves a pre-norm Transformer whose
    FFN output is scaled by 1/2; doubling W2b and b2b then gives exactly the Lie–Trotter model of width
    d_ff / 2.
    (Post-norm has no such identity: the macaron LayerNorm still acts on x.)"""
    strang = _model("strang", dtype="float64", intermediate_dim=16)
    baseline = _model("lie_trotter", dtype="float64", intermediate_dim=8)
    _randomize(strang)
    before = _logits(strang, X)
    for layer in strang.encoder_layers + strang.decoder_layers:
        layer.macaron_ffn.output_dense.kernel.assign(np.zeros((8, 8)))
        layer.macaron_ffn.output_dense.bias.assign(np.zeros(8))
    zeroed = _logits(strang, X)
    assert np.abs(zeroed - before).max() > 1e-2  # the macaron FFN mattered

    _copy_trunk(strang, baseline, 0.5)
    np.testing.assert_allclose(zeroed, _logits(baseline, X), atol=1e-10)
    _copy_trunk(strang, baseline, 1.0)  # the baseline with the same weights as the Strang model
    for layer in strang.encoder_layers + strang.decoder_layers:
        layer.ffn.output_dense.kernel.assign(2.0 * layer.ffn.output_dense.kernel)
        layer.ffn.output_dense.bias.assign(2.0 * layer.ffn.output_dense.bias)
    np.testing.assert_allclose(_logits(strang, X), _logits(baseline, X), atol=1e-10)


def _layer_parameters(cls, hidden_dim, num_heads, intermediate_dim, scheme, norm_affine=True):
    layer = cls(num_heads, intermediate_dim, scheme=scheme, norm_affine=norm_affine)
    layer.build((None, None, hidden_dim))
    return layer.count_params()


def _transformer_parameters(vocabulary_size, num_layers, hidden_dim, intermediate_dim):
    """The fairseq Transformer (Lie–Trotter, pre-norm, shared embeddings), counted by hand: V·E; per
    encoder layer attention 4(E² + E), FFN 2·E·F + F + E, 2 LayerNorms; per decoder layer two
    attentions and 3 LayerNorms; the two final LayerNorms."""
    e, f = hidden_dim, intermediate_dim
    attention, ffn, norm = 4 * (e * e + e), 2 * e * f + f + e, 2 * e
    encoder, decoder = attention + ffn + 2 * norm, 2 * attention + ffn + 3 * norm
    return vocabulary_size * e + num_layers * (encoder + decoder) + 2 * norm


@pytest.mark.parametrize("name,difference", [("iwslt14_small", 18_432), ("wmt14_big", 36_864)])
def test_parameter_counts_of_the_paper_configurations(name, difference):
    """docs/papers.md#macaron-test-1: Strang = Lie–Trotter + 3d per layer (12 layers): IWSLT +18,432, WMT big
    +36,864; everything else equals the Transformer counted by hand (vocabulary 8: the embedding is
    V·E in both)."""
    config = CONFIGS[name]
    strang, baseline = (
        MacaronTransformer(vocabulary_size=8, scheme=scheme, **config).count_params()
        for scheme in ("strang", "lie_trotter")
    )
    assert strang - baseline == difference == 3 * config["hidden_dim"] * 2 * config["num_layers"]
    assert baseline == _transformer_parameters(8, 6, config["hidden_dim"], config["intermediate_dim"])


def test_parameter_counts_per_layer_affine_and_non_affine():
    """+3d per layer with affine LayerNorms (WMT base), +d without (BERT-base: 12 layers, d = 768,
    FFN 3072 vs 2 x 1536: +9,216)."""
    for cls in (MacaronEncoderLayer, MacaronDecoderLayer):
        s, lt = (_layer_parameters(cls, 512, 8, 2048, scheme) for scheme in ("strang", "lie_trotter"))
        assert s - lt == 3 * 512
    bert = {scheme: _layer_parameters(MacaronEncoderLayer, 768, 12, 3072, scheme, norm_affine=False)
            for scheme in ("strang", "lie_trotter")}  # fmt: skip
    assert 12 * (bert["strang"] - bert["lie_trotter"]) == 9_216
    assert _model().count_params() - _model("lie_trotter").count_params() == 3 * 8 * 2 * TINY["num_layers"]


def test_splitting_orders_on_a_linear_system():
    """docs/papers.md#macaron-test-4, du/dt = (A + B)u with non-commuting A, B, up to t = 1 in n steps:
    Lie–Trotter e^{hB} e^{hA} errs O(h) (one step O(h²)), Strang e^{hA/2} e^{hB} e^{hA/2} O(h²) (one step
    O(h³)): halving h divides the global errors by 2 and 4, the one-step errors by 4 and 8."""
    a, b = np.array([[0.0, 1.0], [-1.0, 0.0]]), np.array([[-0.5, 0.0], [0.3, -1.0]])
    assert np.abs(a @ b - b @ a).max() > 0.1
    e = scipy.linalg.expm
    lie_trotter = lambda h: e(h * b) @ e(h * a)  # noqa: E731
    strang = lambda h: e(h * a / 2) @ e(h * b) @ e(h * a / 2)  # noqa: E731
    exact = lambda h: e(h * (a + b))  # noqa: E731
    steps = [8, 16, 32, 64]
    for scheme, order in [(lie_trotter, 1), (strang, 2)]:
        global_errors = [np.abs(np.linalg.matrix_power(scheme(1 / n), n) - exact(1.0)).max() for n in steps]
        local_errors = [np.abs(scheme(1 / n) - exact(1 / n)).max() for n in steps]
        np.testing.assert_allclose(np.array(global_errors[:-1]) / global_errors[1:], 2**order, rtol=0.1)
        np.testing.assert_allclose(np.array(local_errors[:-1]) / local_errors[1:], 2 ** (order + 1), rtol=0.1)


def test_without_dropout_outputs_are_deterministic_and_pre_norm_has_final_layer_norms():
    model = _model()
    eval_logits = _logits(model, X)
    np.testing.assert_array_equal(_logits(model, X, training=True), _logits(model, X, training=True))
    np.testing.assert_allclose(_logits(model, X, training=True), eval_logits, atol=1e-6)
    noisy = _model(dropout=0.3, attention_dropout=0.1, activation_dropout=0.1)
    assert np.abs(_logits(noisy, X, training=True) - _logits(noisy, X, training=True)).max() > 1e-3
    assert {"encoder_norm", "decoder_norm"} <= {layer.name for layer in model.layers}
    post = _model(normalize_before=False)
    assert not {"encoder_norm", "decoder_norm"} & {layer.name for layer in post.layers}
    assert model.count_params() == post.count_params() + 2 * 2 * 8


def test_the_translation_task_checks_the_inputs():
    model = _model()
    assert model.task.name == "translation"
    checked = model.task.check_inputs(model, X)
    assert sorted(checked) == sorted(INPUT_NAMES)
    bad = X["decoder_token_ids"].copy()
    bad[0, 1] = 20
    with pytest.raises(OdezooError, match=r"'decoder_token_ids' holds values in \[2, 20\]"):
        model.task.check_inputs(model, {**X, "decoder_token_ids": bad})


def test_causal_mask_future_target_tokens_do_not_change_earlier_logits():
    model = _model()
    _randomize(model, 0.3)
    changed = {**X, "decoder_token_ids": X["decoder_token_ids"].copy()}
    changed["decoder_token_ids"][:, 3:] = [[4, 5], [6, 7]]
    before, after = _logits(model, X), _logits(model, changed)
    np.testing.assert_allclose(after[:, :3], before[:, :3], atol=1e-6)
    assert np.abs(after[:, 3:] - before[:, 3:]).max() > 1e-3


@pytest.mark.parametrize("scheme", ["strang", "lie_trotter"])
def test_padded_batch_gives_the_logits_of_the_unpadded_sequences(scheme):
    """Left- or right-padded sources and right-padded targets; pads carry other token ids too."""
    model = _model(scheme)
    _randomize(model, 0.3)
    sources, targets = [[5, 6, 7], [8, 9, 10, 11, 12]], [[2, 13, 14], [2, 15]]
    for left in (True, False):
        batch = _inputs(
            [[1, 1, 5, 6, 7] if left else [5, 6, 7, 3, 3], [8, 9, 10, 11, 12]],
            [[2, 13, 14], [2, 15, 4]],
            [[0, 0, 1, 1, 1] if left else [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]],
            [[1, 1, 1], [1, 1, 0]],
        )
        padded = _logits(model, batch)
        for i, (source, target) in enumerate(zip(sources, targets)):
            alone = _logits(model, _inputs([source], [target]))[0]
            np.testing.assert_allclose(padded[i, : len(target)], alone, atol=1e-5)
    shifted = _logits(model, _inputs([[1, 1, 5, 6, 7]], [targets[0]]))  # pads that are real tokens
    assert np.abs(shifted[0] - _logits(model, _inputs([sources[0]], [targets[0]]))[0]).max() > 1e-3


def test_cached_decoding_gives_the_logits_and_greedy_tokens_of_full_decoding():
    model = _model()
    _randomize(model, 0.3)
    source, mask = X["encoder_token_ids"], np.array([[1] * 6, [0, 0, 1, 1, 1, 1]], "int32")  # one left-padded
    target = X["decoder_token_ids"]
    full = _logits(model, _inputs(source, target, mask))
    encoder_output = model.encode(source, mask)
    cache = model.init_cache(2, 5)
    assert tuple(cache.shape) == (2, 2, 2, 5, 2, 4)
    prefix, cache = model.call_decoder_with_cache(encoder_output, mask, target[:, :2], cache, 0)  # 2 at once
    steps = [np.asarray(prefix)]
    for t in range(2, 5):
        logits, cache = model.call_decoder_with_cache(encoder_output, mask, target[:, t : t + 1], cache, t)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)

    def full_greedy(max_length, end_id):
        tokens, done = np.full((2, 1), 2, "int32"), np.zeros(2, bool)
        for _ in range(max_length):
            nxt = _logits(model, _inputs(source, tokens, mask))[:, -1].argmax(-1)
            nxt = np.where(done, model.pad_id, nxt)
            tokens, done = np.concatenate([tokens, nxt[:, None]], 1).astype("int32"), done | (nxt == end_id)
            if done.all():
                break
        return tokens[:, 1:]

    for end_id in (-1, int(full[0, 0].argmax())):  # never ends / the first sequence ends at once
        greedy = model.greedy_decode(source, mask, max_length=6, end_id=end_id)
        np.testing.assert_array_equal(greedy, full_greedy(6, end_id))
    assert greedy[0, 0] == end_id and (greedy[0, 1:] == model.pad_id).all()


def _fairseq_positions(mask, dim, pad_id, start=0):
    """docs/papers.md#macaron-checkpoints in float64: real tokens numbered pad_id + 1, ... in order, pads at
    pad_id (zero); half = dim // 2, f = exp(-arange(half) ln(10000) / (half - 1)), [sin(p f), cos(p f)]
    (then 0)."""
    half = dim // 2
    f = np.exp(-np.arange(half) * np.log(10000.0) / (half - 1))
    out = np.zeros((*mask.shape, dim))
    for b, row in enumerate(mask):
        count = start
        for t, real in enumerate(row):
            if real:
                count += 1
                p = pad_id + count
                out[b, t, : 2 * half] = np.concatenate([np.sin(p * f), np.cos(p * f)])
    return out


@pytest.mark.parametrize("dim,pad_id", [(10, 1), (9, 0)])
def test_sinusoidal_positions_match_fairseq(dim, pad_id):
    mask = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32")
    layer = SinusoidalPositionEmbedding(dim, max_positions=12, pad_id=pad_id)
    np.testing.assert_allclose(np.asarray(layer(mask)), _fairseq_positions(mask, dim, pad_id), atol=2e-6)
    np.testing.assert_allclose(
        np.asarray(layer(mask[2:], start_index=5)), _fairseq_positions(mask[2:], dim, pad_id, 5), atol=2e-6
    )
    # keras-hub's SinePositionEncoding: positions from 0, sin/cos interleaved, frequencies 10000^(-2i/d)
    p, i = np.arange(6)[:, None], np.arange(dim)[None, :]
    angles = p / 10000.0 ** (2 * (i // 2) / dim)
    keras_hub = np.where(i % 2 == 0, np.sin(angles), np.cos(angles))
    assert np.abs(np.asarray(layer(mask))[2] - keras_hub).max() > 0.5


def test_initialisation_follows_fairseq():
    """Embeddings N(0, 1/E) with a zero padding row; in-projections Xavier-uniform over the stacked
    (3E, E) matrix, output projections and FFN kernels Xavier-uniform; biases 0."""
    model = _model(vocabulary_size=400, hidden_dim=16, intermediate_dim=32)
    embeddings = np.asarray(model.token_embedding.embeddings)
    assert not embeddings[1].any() and embeddings[2].any()
    assert abs(embeddings[2:].std() / 16**-0.5 - 1) < 0.1
    attention = model.encoder_layers[0].self_attention
    in_bound, out_bound = math.sqrt(6 / (16 + 3 * 16)), math.sqrt(6 / (16 + 16))
    ffn = model.decoder_layers[0].ffn
    checks = [(attention.query_dense, in_bound), (attention.value_dense, in_bound),
              (attention.output_dense, out_bound), (ffn.inner_dense, out_bound)]  # fmt: skip
    for dense, bound in checks:
        kernel = np.abs(np.asarray(dense.kernel))
        assert 0.85 * bound < kernel.max() <= bound
        assert not np.asarray(dense.bias).any()


def test_shared_embeddings_are_one_matrix():
    shared, separate = _model(), _model(share_all_embeddings=False)
    matrices = lambda m: [w for w in m.weights if 20 in w.shape]  # noqa: E731
    assert len(matrices(shared)) == 1 and len(matrices(separate)) == 3
    assert separate.count_params() == shared.count_params() + 2 * 20 * 8
    assert _logits(separate, X).shape == (2, 5, 20)
    # the logits are the final decoder states times the one matrix
    probe = keras.Model(shared.input, shared.get_layer("decoder_norm").output)
    states = np.asarray(probe(X))
    np.testing.assert_allclose(
        _logits(shared, X), states @ np.asarray(shared.token_embedding.embeddings).T, atol=1e-5
    )


def test_attention_cache_matches_attention_over_the_whole_sequence():
    att = MultiHeadAttention(2)
    x = RNG.normal(size=(1, 4, 8)).astype("float32")
    full = np.asarray(att(x, causal=True))
    cache = np.zeros((1, 2, 4, 2, 4), "float32")
    outs = []
    for t in range(4):
        out, cache = att(x[:, t : t + 1], causal=True, cache=cache, cache_update_index=t)
        outs.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"scheme": "euler"}, "`scheme` must be one of ('strang', 'lie_trotter'). Received: scheme='euler'"),
        ({"intermediate_dim": 15}, "`intermediate_dim` must be even with scheme='strang'"),
        ({"hidden_dim": 10, "num_heads": 4}, "`hidden_dim` must be a multiple of `num_heads`. "
         "Received: hidden_dim=10, num_heads=4"),
        ({"dropout": 1.0}, "`dropout` must be a rate in [0, 1). Received: dropout=1.0"),
        ({"attention_dropout": -0.1}, "`attention_dropout` must be a rate in [0, 1). "
         "Received: attention_dropout=-0.1"),
        ({"activation_dropout": "0.1"}, "`activation_dropout` must be a rate in [0, 1). "
         "Received: activation_dropout='0.1'"),
        ({"pad_id": 20}, "`pad_id` must be < vocabulary_size=20. Received: pad_id=20"),
        ({"vocabulary_size": 0}, "`vocabulary_size` must be >= 1. Received: vocabulary_size=0"),
        ({"hidden_dim": 2, "num_heads": 1}, "`hidden_dim` must be >= 4. Received: hidden_dim=2"),
        ({"max_positions": 0}, "`max_positions` must be >= 1. Received: max_positions=0"),
    ],
)  # fmt: skip
def test_bad_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError) as error:
        MacaronTransformer(**{**TINY, **kwargs})
    assert message in str(error.value)


def test_greedy_decode_refuses_more_steps_than_positions():
    with pytest.raises(
        ValueError, match=r"`max_length` must be <= max_positions=16. Received: max_length=17"
    ):
        _model().greedy_decode(X["encoder_token_ids"], X["encoder_padding_mask"], max_length=17)
