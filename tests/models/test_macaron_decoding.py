"""Macaron Net decoding: `beam_search` against a slow reference written from fairseq 0.6's rules (the
model's forward pass recomputed on every prefix, plain Python bookkeeping), beam 1 and greedy,
the length penalty, the maximum length, batching, the cross-attention cache and the messages."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from odezoo.models import MacaronTransformer
from odezoo.models.macaron import macaron
from odezoo.models.macaron.macaron import INPUT_NAMES
from odezoo.models.macaron.macaron_decoding import fairseq_beam_search

ROOT = Path(__file__).resolve().parents[2]
TINY = {"vocabulary_size": 20, "num_layers": 2, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16,
        "max_positions": 16, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}  # fmt: skip
EOS, PAD, UNK = 2, 1, 3


@functools.cache
def _model(seed, eos_boost=1.5):
    """A tiny model with every weight ~ N(0, 0.3²) (LayerNorm scales around 1), the decoder's final
    LayerNorm shift 0 (else one token wins every step) and the `</s>` embedding times `eos_boost` (so
    hypotheses end at various lengths)."""
    keras.utils.set_random_seed(0)
    model = MacaronTransformer(**TINY)
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0.0, 0.3, w.shape) + (1.0 if w.path.endswith("gamma") else 0.0))
    model.decoder_norm.beta.assign(np.zeros(8))
    embeddings = np.array(model.token_embedding.embeddings)
    embeddings[EOS] *= eos_boost
    model.token_embedding.embeddings.assign(embeddings)
    return model


def _log_probs(model, source, prefixes):
    """log-softmax (float64) of each prefix's last logits, the whole decoder recomputed on every prefix: the
    model's forward pass (`predict_on_batch`) on one padded shape, 5 x 8 targets and 6 source tokens."""
    targets, target_mask = np.full((5, 8), PAD, "int32"), np.zeros((5, 8), "int32")
    for i, prefix in enumerate(prefixes):
        targets[i, : len(prefix)], target_mask[i, : len(prefix)] = prefix, 1
    sources = np.repeat([[PAD] * (6 - len(source)) + list(source)], 5, 0).astype("int32")
    x = dict(zip(INPUT_NAMES, (sources, (sources != PAD).astype("int32"), targets, target_mask)))
    logits = model.predict_on_batch(x).astype("float64")[np.arange(len(prefixes)), len(prefixes[0]) - 1]
    top = logits.max(-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def _reference_beam_search(model, source, *, beam, lenpen, max_len, min_len=1, unk_penalty=0.0):
    """fairseq 0.6 `SequenceGenerator` (stop early), one unpadded source: returns [(tokens, score)] best
    first, tokens ending with </s>."""
    vocabulary = TINY["vocabulary_size"]
    live = [([EOS], 0.0)] * beam  # (decoder input so far, summed log-probability)
    done = []

    def finish(tokens, total, length):
        if len(done) < beam:
            done.append((tokens[1:] + [EOS], total / length**lenpen))

    for step in range(max_len + 1):
        log_probs = _log_probs(model, source, [tokens for tokens, _ in live])
        log_probs[:, PAD] = -np.inf
        log_probs[:, UNK] -= unk_penalty
        if step == max_len:  # </s> forced: best first
            ends = [(score + log_probs[i, EOS], i) for i, (_, score) in enumerate(live)]
            for total, i in sorted(ends, key=lambda end: -end[0]):
                finish(live[i][0], total, step + 1)
            break
        rows = 1 if step == 0 else beam  # step 0: the first beam only
        candidates = sorted(
            ((live[i][1] + log_probs[i, v], i, v) for i in range(rows) for v in range(vocabulary)),
            key=lambda c: (-c[0], c[1], c[2]),
        )[: 2 * beam]
        if step >= min_len:
            for total, i, v in candidates[:beam]:
                if v == EOS:
                    finish(live[i][0], total, step + 1)
            if len(done) == beam:
                break
        live = [(live[i][0] + [v], total) for total, i, v in candidates if v != EOS][:beam]
    return sorted(done, key=lambda h: -h[1])


def _hypotheses(tokens, scores):
    """`beam_search(..., n_best=n)`'s output as [[(tokens up to </s>, score)] per sentence]."""
    return [
        [(list(row[: list(row).index(EOS) + 1]), float(score)) for row, score in zip(rows, row_scores)]
        for rows, row_scores in zip(tokens, scores)
    ]


def _assert_same(found, expected):
    assert [tokens for tokens, _ in found] == [tokens for tokens, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=1e-5, rtol=0)


SOURCES = [[5, 6, 7, 8, 9, 2], [10, 11, 12, 2]]  # fairseq's sources end with </s>
BATCH = np.array([SOURCES[0], [PAD, PAD] + SOURCES[1]], "int32")  # left-padded, as fairseq
MASK = (BATCH != PAD).astype("int32")


SETTINGS = [{"beam": beam, "lenpen": lenpen} for beam in (1, 3, 5) for lenpen in (0.6, 1.0)]


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_beam_search_equals_the_reference(seed):
    """Same n-best hypotheses and scores (1e-5) as the reference, beam 1, 3, 5 x lenpen 0.6, 1.0 (and once
    with min_len and unk_penalty), on a batch of two sources of different lengths; the cases both finish
    early and reach the length limit."""
    model = _model(seed)
    lengths = set()
    for settings in [*SETTINGS, {"beam": 3, "lenpen": 1.0, "min_len": 3, "unk_penalty": 0.5}]:
        tokens, scores = model.beam_search(BATCH, MASK, max_len_b=7, n_best=settings["beam"], **settings)
        for found, source in zip(_hypotheses(tokens, scores), SOURCES):
            _assert_same(found, _reference_beam_search(model, source, max_len=7, **settings))
            lengths |= {len(tokens) for tokens, _ in found}
    assert 8 in lengths and min(lengths) < 8


def test_searching_in_parts_changes_nothing(monkeypatch):
    """The compiled loop stops where half of its sentences are done (they leave the batch, as in fairseq)
    or its room is full (it doubles): from 2 positions, the same hypotheses as the reference."""
    parts = []

    def search_in_parts(search, extras, caches, **kwargs):
        def part(*args):
            parts.append((len(args[-1][1]), args[-1][3].shape[2]))  # (rows, positions)
            return search(*args)

        return fairseq_beam_search(part, extras, caches, **kwargs)

    monkeypatch.setattr(macaron, "_first_capacity", lambda source_length: 2)
    monkeypatch.setattr(macaron, "fairseq_beam_search", search_in_parts)
    model = _model(0)
    dropped = False
    for settings in SETTINGS[2:]:
        parts.clear()
        tokens, scores = model.beam_search(BATCH, MASK, max_len_b=7, n_best=settings["beam"], **settings)
        for found, source in zip(_hypotheses(tokens, scores), SOURCES):
            _assert_same(found, _reference_beam_search(model, source, max_len=7, **settings))
        rows, positions = zip(*parts)
        assert rows[0] == 2 * settings["beam"] and positions[:2] == (2, 4)  # grown from 2 positions
        dropped |= rows[-1] == settings["beam"]  # one sentence went on alone
    assert dropped


def test_beam_one_is_greedy():
    """beam=1 (min_len 0) picks the arg-max every step, as greedy_decode, until </s>; at the limit it forces
    </s> where greedy goes on."""
    for seed in (0, 1, 3):
        model = _model(seed)
        greedy = model.greedy_decode(BATCH, MASK, max_length=8)
        beam = model.beam_search(BATCH, MASK, beam=1, min_len=0, max_len_b=7)
        for g, b in zip(greedy, beam):
            end = list(g).index(EOS) + 1 if EOS in g else 8
            assert PAD not in g[:end]  # beam search never picks pad: the comparison needs greedy not to
            np.testing.assert_array_equal(b[: min(end, 7)], g[: min(end, 7)])
            assert list(b).index(EOS) + 1 == end


def test_length_penalty_changes_the_choice():
    """The finished hypotheses are the same under lenpen 0.6 and 1.0 (the penalty only ranks them), with
    the same summed log-probabilities score * length ** lenpen; a shorter one wins under 0.6 and a longer
    one under 1.0 (seed found by search)."""
    model = _model(0)
    tokens, short_scores = model.beam_search(BATCH, MASK, beam=5, lenpen=0.6, max_len_b=7, n_best=5)
    short = _hypotheses(tokens, short_scores)[0]
    tokens, long_scores = model.beam_search(BATCH, MASK, beam=5, lenpen=1.0, max_len_b=7, n_best=5)
    long = _hypotheses(tokens, long_scores)[0]
    raw = lambda hypotheses, p: {tuple(t): s * len(t) ** p for t, s in hypotheses}  # noqa: E731
    assert raw(short, 0.6).keys() == raw(long, 1.0).keys()
    for hypothesis, total in raw(short, 0.6).items():
        assert abs(total - raw(long, 1.0)[hypothesis]) < 1e-5
    assert len(short[0][0]) < len(long[0][0])


def test_maximum_length_counts_the_longest_source_and_forces_eos():
    """max length int(max_len_a * src_len + max_len_b), src_len the batch's longest source (6 here, also for
    the 4-token one): no hypothesis is longer, and some end there with </s> that was not the model's pick."""
    model = _model(2, eos_boost=1.0)
    for max_len_a, max_len_b, limit in [(0.0, 3, 3), (0.5, 1, 4)]:
        tokens = model.beam_search(BATCH, MASK, beam=3, max_len_a=max_len_a, max_len_b=max_len_b, n_best=3)[0]
        for hypotheses, source in zip(tokens, SOURCES):
            lengths = (hypotheses != PAD).sum(1)
            assert lengths.max() == limit + 1
            longest = list(hypotheses[lengths.argmax(), : limit + 1])
            assert longest[-1] == EOS
            log_probs = _log_probs(model, source, [[EOS] + longest[:-1]])[0]
            log_probs[PAD] = -np.inf
            assert log_probs.argmax() != EOS  # forced


@pytest.mark.parametrize("left", [True, False])
def test_batched_equals_one_sentence_at_a_time(left):
    model = _model(3)
    sources = [[5, 6, 2], [7, 8, 9, 10, 2], [11, 12, 13, 14, 15, 2]]
    width = 6
    pad = lambda s: [PAD] * (width - len(s)) + s if left else s + [PAD] * (width - len(s))  # noqa: E731
    batch = np.array([pad(s) for s in sources], "int32")
    tokens, scores = model.beam_search(batch, (batch != PAD).astype("int32"), beam=3, max_len_b=6, n_best=3)
    for found, source in zip(_hypotheses(tokens, scores), sources):
        one = np.array([source], "int32")
        alone = _hypotheses(*model.beam_search(one, np.ones_like(one), beam=3, max_len_b=6, n_best=3))[0]
        _assert_same(found, alone)


def test_cross_attention_cache_gives_the_same_logits():
    model = _model(1)
    encoder_output = model.encode(BATCH, MASK)
    target = np.array([[EOS, 5], [EOS, 6]], "int32")
    plain, _ = model.call_decoder_with_cache(encoder_output, MASK, target, model.init_cache(2, 2), 0)
    cached, _ = model.call_decoder_with_cache(
        None, MASK, target, model.init_cache(2, 2), 0, model.cross_attention_cache(encoder_output)
    )
    np.testing.assert_allclose(np.asarray(cached), np.asarray(plain), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"beam": 0}, "`beam` must be >= 1. Received: beam=0"),
        ({"beam": 10}, "`beam` must be <= (vocabulary_size - 1) // 2 = 9. Received: beam=10"),
        ({"beam": 2.0}, "`beam` must be an integer >= 1. Received: beam=2.0 (float)"),
        ({"lenpen": "1.0"}, "`lenpen` must be a finite number. Received: lenpen='1.0' (str)"),
        ({"lenpen": float("nan")}, "`lenpen` must be a finite number. Received: lenpen=nan (float)"),
        ({"max_len_a": -1}, "`max_len_a` must be >= 0. Received: max_len_a=-1"),
        ({"max_len_b": 200}, "The maximum length `int(max_len_a * src_len + max_len_b)` must be <= "
         "max_positions - 1 = 15. Received: max_len_a=0.0, src_len=6, max_len_b=200: 200"),
        ({"max_len_a": 2.0, "max_len_b": 4}, "must be <= max_positions - 1 = 15. Received: max_len_a=2.0, "
         "src_len=6, max_len_b=4: 16"),
        ({"min_len": -1}, "`min_len` must be >= 0. Received: min_len=-1"),
        ({"n_best": 4, "beam": 3}, "`n_best` must be <= beam=3. Received: n_best=4"),
        ({"eos_id": 20}, "`eos_id` must be < vocabulary_size=20. Received: eos_id=20"),
    ],
)  # fmt: skip
def test_bad_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError) as error:
        _model(0).beam_search(BATCH, MASK, **{"max_len_b": 5, **kwargs})
    assert message in str(error.value)


@pytest.mark.backend
def test_jax_backend_decodes_as_tensorflow(tmp_path):
    """The compiled step under JAX (`jax.jit`, weights passed at each call): the same hypotheses, also after
    a weight changes between calls."""
    code = (
        f"import sys, numpy as np; sys.path.insert(0, {str(ROOT / 'tests' / 'models')!r}); "
        "from test_macaron_decoding import _model, BATCH, MASK; m = _model(0); "
        "first = m.beam_search(BATCH, MASK, beam=3, max_len_b=7, n_best=3); "
        "m.decoder_norm.gamma.assign(np.asarray(m.decoder_norm.gamma) * 0.5); "
        "second = m.beam_search(BATCH, MASK, beam=3, max_len_b=7, n_best=3); "
        f"np.savez({str(tmp_path / 'jax.npz')!r}, *first, *second)"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    jax = np.load(tmp_path / "jax.npz")
    model = MacaronTransformer(**TINY)
    model.set_weights(_model(0).get_weights())
    for i in (0, 2):
        tokens, scores = model.beam_search(BATCH, MASK, beam=3, max_len_b=7, n_best=3)
        np.testing.assert_array_equal(jax[f"arr_{i}"], tokens)
        np.testing.assert_allclose(jax[f"arr_{i + 1}"], scores, atol=1e-5)
        model.decoder_norm.gamma.assign(np.asarray(model.decoder_norm.gamma) * 0.5)
