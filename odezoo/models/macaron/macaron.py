"""Macaron Net: the Transformer layer as a Strang–Marchuk splitting step, FFN → attention → FFN
(Lu, Li, He, Sun, Dong, Qin, Wang, Liu, 2019), in fairseq's translation model."""

import math
from functools import partial

import keras
import numpy as np
from keras import layers, ops

from odezoo._compile import backend_compiled
from odezoo._progress import progress
from odezoo.errors import OdezooError, check_integer, check_number
from odezoo.models.macaron.macaron_decoding import beam_search_loop, fairseq_beam_search, ranked_hypotheses
from odezoo.models.macaron.macaron_layers import (
    MacaronDecoderLayer,
    MacaronEncoderLayer,
    PaddedNormal,
    SinusoidalPositionEmbedding,
    check_model_settings,
    layer_norm,
)
from odezoo.models.macaron.macaron_tasks import MacaronTranslation
from odezoo.models.macaron.macaron_tokenizer import check_sentences, preset_tokenizer
from odezoo.pretrained import PretrainedMixin

INPUT_NAMES = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")

# The paper's translation architectures (docs/papers.md#macaron-translation; fairseq `*_macaron_v2` and
# `*_big_t2t_macaron`):
# `intermediate_dim` is the Transformer baseline's d_ff, each Macaron FFN has half of it.
CONFIGS = {
    "iwslt14_small": {
        "num_layers": 6,
        "hidden_dim": 512,
        "num_heads": 4,
        "intermediate_dim": 1024,
        "dropout": 0.3,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "normalize_before": True,
    },
    "wmt14_base": {
        "num_layers": 6,
        "hidden_dim": 512,
        "num_heads": 8,
        "intermediate_dim": 2048,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "normalize_before": True,
    },
    "wmt14_big": {
        "num_layers": 6,
        "hidden_dim": 1024,
        "num_heads": 16,
        "intermediate_dim": 4096,
        "dropout": 0.3,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "normalize_before": True,
    },
}


@keras.saving.register_keras_serializable(package="odezoo")
class MacaronTransformer(PretrainedMixin, keras.Model):
    """Encoder–decoder Transformer for translation whose layers are splitting schemes.

    A Transformer layer integrates `dx/dt = F(x) + G(x)` (`F` the position-wise FFN, `G` the
    attention) over one step by splitting. The Transformer's attention → FFN is Lie–Trotter
    (`e^{F} e^{G}`, first order); Macaron Net's FFN/2 → attention → FFN/2 is Strang–Marchuk
    (`e^{F/2} e^{G} e^{F/2}`, second order). See `MacaronEncoderLayer` / `MacaronDecoderLayer`.

    fairseq's model: `x_0 = sqrt(E) · Emb(tokens) + P(positions)` (sinusoidal, see
    `SinusoidalPositionEmbedding`), dropout; `num_layers` encoder layers, then, in pre-norm form,
    a final LayerNorm; the same for the decoder (causal self-attention, attention to the encoder
    output); logits `= h · Embᵀ`. With `share_all_embeddings` one `(vocabulary_size, E)` matrix
    embeds the source and the target and projects to the logits; without it there are three.
    Embeddings `~ N(0, 1/E)` with a zero padding row, linear kernels Xavier-uniform, biases 0.

    Inputs (keras-hub's seq2seq names), int32 `(batch, length)`: `encoder_token_ids`,
    `encoder_padding_mask` (1 at real tokens; fairseq left-pads sources), `decoder_token_ids`
    (the target shifted right, starting with `</s>` = 2 as fairseq does) and `decoder_padding_mask`.
    Output: next-token logits `(batch, decoder length, vocabulary_size)`.

    Decoding: `encode` runs the encoder once; `call_decoder_with_cache` runs decoder steps on cached
    self-attention keys and values (`init_cache`) and, optionally, on the cross-attention keys and
    values of the encoder output (`cross_attention_cache`); `beam_search` (fairseq's) and
    `greedy_decode` run such steps in loops compiled by the backend.

    Args:
        vocabulary_size: size of the joined dictionary.
        num_layers: layers of the encoder and of the decoder.
        hidden_dim: E.
        num_heads: attention heads.
        intermediate_dim: the Transformer baseline's FFN width `d_ff`; with `scheme="strang"` each
            of the two FFNs has `d_ff / 2`: the schemes' parameters differ by `3E` per layer only.
        scheme: `"strang"` (Macaron) or `"lie_trotter"` (Transformer).
        normalize_before: pre-norm (`True`, every reported result) or post-norm.
        dropout: after the embeddings and on every sub-layer's output.
        attention_dropout: on the attention weights.
        activation_dropout: after the FFNs' ReLU.
        max_positions: longest source or target the sinusoid table holds.
        pad_id: the padding token (fairseq: 1).
        share_all_embeddings: one matrix for the source, target and output embeddings.

    Example (`CONFIGS` holds the paper's three architectures):
        >>> model = MacaronTransformer(vocabulary_size=len(dictionary), **CONFIGS["iwslt14_small"])
        >>> tokens = model.beam_search(source_ids, source_mask, beam=5, lenpen=1.0)  # IWSLT's setting

    Reference: https://arxiv.org/abs/1906.02762
    """

    TASK_CLASS = MacaronTranslation
    # dropouts act in training only; the sinusoid table of `max_positions` holds no weights
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {
        "dropout", "attention_dropout", "activation_dropout", "max_positions"
    }  # fmt: skip
    CITATION = """@article{lu2019understanding,
  title={Understanding and Improving Transformer From a Multi-Particle Dynamic System Point of View},
  author={Lu, Yiping and Li, Zhuohan and He, Di and Sun, Zhiqing and Dong, Bin and Qin, Tao and
          Wang, Liwei and Liu, Tie-Yan},
  journal={arXiv preprint arXiv:1906.02762},
  year={2019}
}"""

    def __init__(
        self,
        *,
        vocabulary_size,
        num_layers=6,
        hidden_dim=512,
        num_heads=8,
        intermediate_dim=2048,
        scheme="strang",
        normalize_before=True,
        dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.1,
        max_positions=1024,
        pad_id=1,
        share_all_embeddings=True,
        dtype=None,
        **kwargs,
    ):
        vocabulary_size, num_layers, hidden_dim, pad_id = check_model_settings(
            vocabulary_size, num_layers, hidden_dim, pad_id, dropout
        )

        # === Layers ===
        embeddings = _token_embeddings(vocabulary_size, hidden_dim, pad_id, share_all_embeddings, dtype)
        if share_all_embeddings:
            self.token_embedding = embeddings[0]
        self.encoder_embedding, self.decoder_embedding, self.output_projection = embeddings
        self.position_embedding = SinusoidalPositionEmbedding(
            hidden_dim, max_positions, pad_id, name="position_embedding", dtype=dtype
        )
        self.embedding_dropout = layers.Dropout(dropout, name="embedding_dropout", dtype=dtype)
        self.encoder_layers, self.decoder_layers, self.encoder_norm, self.decoder_norm = _layer_stacks(
            num_layers, num_heads, intermediate_dim, scheme=scheme, normalize_before=normalize_before,
            dropout=dropout, attention_dropout=attention_dropout, activation_dropout=activation_dropout,
            dtype=dtype,
        )  # fmt: skip

        # === Functional Model ===
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUT_NAMES}
        logits = self._teacher_forced_logits(inputs)
        super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)

        # === Config ===
        self.set_config(
            dtype=dtype,
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            scheme=scheme,
            normalize_before=bool(normalize_before),
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation_dropout=activation_dropout,
            max_positions=max_positions,
            pad_id=pad_id,
            share_all_embeddings=bool(share_all_embeddings),
        )
        self._compiled_steps = {}  # `_compiled`: greedy, the encoder, beam search per beam

    def _teacher_forced_logits(self, inputs):
        """The functional model's output on its `inputs` (`INPUT_NAMES`): the encoder, then the decoder
        stack on the whole shifted target, then the next-token logits."""
        encoder_output = self._encode(inputs["encoder_token_ids"], inputs["encoder_padding_mask"])
        x = self._embed(self.decoder_embedding, inputs["decoder_token_ids"], inputs["decoder_padding_mask"])
        for layer in self.decoder_layers:
            x = layer(
                x,
                encoder_output,
                decoder_padding_mask=inputs["decoder_padding_mask"],
                encoder_padding_mask=inputs["encoder_padding_mask"],
            )
        return self._logits(x)

    def _embed(self, embedding, token_ids, padding_mask, start_index=0):
        """`Drop(sqrt(E) · Emb(ids) + P(positions))`."""
        x = embedding(token_ids) * math.sqrt(embedding.output_dim)
        return self.embedding_dropout(x + self.position_embedding(padding_mask, start_index=start_index))

    def _encode(self, token_ids, padding_mask):
        x = self._embed(self.encoder_embedding, token_ids, padding_mask)
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=padding_mask)
        return x if self.encoder_norm is None else self.encoder_norm(x)

    def _logits(self, x):
        x = x if self.decoder_norm is None else self.decoder_norm(x)
        if self.output_projection is None:
            return self.token_embedding(x, reverse=True)
        return self.output_projection(x)

    def encode(self, encoder_token_ids, encoder_padding_mask):
        """The encoder output `(batch, source length, hidden_dim)`, inference mode."""
        return self._encode(
            ops.convert_to_tensor(encoder_token_ids), ops.convert_to_tensor(encoder_padding_mask)
        )

    def init_cache(self, batch_size, max_length):
        """An empty self-attention cache, `(batch, num_layers, 2, max_length, num_heads, head_dim)`
        (keras-hub's layout: keys at index 0 and values at index 1 of axis 2)."""
        head_dim = self.hidden_dim // self.num_heads
        shape = (batch_size, self.num_layers, 2, max_length, self.num_heads, head_dim)
        return ops.zeros(shape, self.compute_dtype)

    def cross_attention_cache(self, encoder_output):
        """The decoder layers' cross-attention keys and values of `encoder_output`, computed once per
        source: `(batch, num_layers, 2, source length, num_heads, head_dim)`."""
        encoder_output = ops.convert_to_tensor(encoder_output)
        return ops.stack(
            [layer.cross_attention.project_key_value(encoder_output) for layer in self.decoder_layers], axis=1
        )

    def call_decoder_with_cache(
        self,
        encoder_output,
        encoder_padding_mask,
        decoder_token_ids,
        cache,
        cache_update_index,
        cross_attention_cache=None,
    ):
        """Runs the decoder on `decoder_token_ids` `(batch, T)`, the target tokens at positions
        `cache_update_index .. + T - 1` (all real), attending to the cached earlier ones.

        `cross_attention_cache` (`cross_attention_cache(encoder_output)`) saves projecting the
        encoder output again at every step; `encoder_output` is then not used (may be `None`).

        Returns:
            `(logits, cache)`: logits `(batch, T, vocabulary_size)` and the cache with these
            tokens' keys and values written in.
        """
        num_layers = self.num_layers
        logits, caches = self._decoder(
            ops.convert_to_tensor(decoder_token_ids),
            cache_update_index,
            [cache[:, i] for i in range(num_layers)],
            encoder_output,
            ops.convert_to_tensor(encoder_padding_mask),
            [None] * num_layers
            if cross_attention_cache is None
            else [cross_attention_cache[:, i] for i in range(num_layers)],
        )
        return logits, ops.stack(caches, axis=1)

    def _decoder(self, token_ids, index, caches, encoder_output, encoder_padding_mask, cross_caches):
        """`call_decoder_with_cache` on per-layer lists of caches: `(logits, [updated cache per layer])`."""
        x = self._embed(self.decoder_embedding, token_ids, ops.ones_like(token_ids), index)
        updated = []
        for layer, cache, cross_cache in zip(self.decoder_layers, caches, cross_caches):
            x, cache = layer(
                x,
                encoder_output,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=cache,
                cache_update_index=index,
                cross_attention_cache=cross_cache,
            )
            updated.append(cache)
        return self._logits(x), updated

    def _compiled(self, key, fn, xla=False):
        """`fn` compiled by `backend_compiled` once per model and `key`."""
        if key not in self._compiled_steps:
            self._compiled_steps[key] = backend_compiled(fn, self.variables, xla=xla)
        return self._compiled_steps[key]

    def _beam_search_loop(self, beam, settings, cross_attention_cache, encoder_padding_mask, state):
        """`macaron_decoding.beam_search_loop` on this model's cached decoder, `beam` rows per source
        (`cross_attention_cache` and `encoder_padding_mask` already repeated to them), `settings` its
        `(token_bias, min_len, max_length, eos_id)`."""
        cross_caches = ops.unstack(cross_attention_cache, axis=1)

        def decode(token_ids, index, caches):
            logits, caches = self._decoder(
                token_ids, index, list(caches), None, encoder_padding_mask, cross_caches
            )
            return logits, tuple(caches)

        return beam_search_loop(decode, state, *settings, beam=beam, vocabulary_size=self.vocabulary_size)

    def greedy_decode(self, encoder_token_ids, encoder_padding_mask, *, max_length, start_id=2, end_id=2):
        """Greedy translation: each step appends the arg-max token, until every sequence has
        produced `end_id` or `max_length` tokens exist: `greedy_search` (the whole loop), compiled by
        the backend.

        Args:
            encoder_token_ids, encoder_padding_mask: the source, `(batch, length)`.
            max_length: the most tokens generated (<= `max_positions`).
            start_id: the decoder's first input (fairseq: `</s>` = 2).
            end_id: the token that ends a sequence (fairseq: `</s>` = 2).

        Returns:
            int32 NumPy array `(batch, steps)` of generated tokens (without `start_id`; `pad_id`
            after a sequence's `end_id`).
        """
        max_length = check_integer("max_length", max_length, 1)
        if max_length > self.max_positions:
            raise OdezooError(
                f"`max_length` must be <= max_positions={self.max_positions}. "
                f"Received: max_length={max_length}"
            )
        tokens, steps = self._compiled("greedy", self.greedy_search, xla=True)(
            encoder_token_ids,
            encoder_padding_mask,
            self.init_cache(len(encoder_token_ids), max_length),
            np.int32(start_id),
            np.int32(end_id),
        )
        return np.asarray(tokens)[:, : int(steps)]

    def greedy_search(self, encoder_token_ids, encoder_padding_mask, cache, start_id, end_id):
        """`greedy_decode` as one loop in `keras.ops` (`ops.while_loop`; no per-step return to Python):
        the encoder and its cross-attention keys/values once, then cached decoder steps appending the
        arg-max token (`pad_id` after a row's `end_id`) until every row has `end_id` or the cache
        (`init_cache(batch, max_length)`) is full.

        Returns:
            `(tokens, steps)`: int32 `(batch, max_length)` tokens, `pad_id` from position `steps` on,
            and the number of steps run.
        """
        encoder_padding_mask = ops.convert_to_tensor(encoder_padding_mask)
        cross_caches = ops.unstack(
            self.cross_attention_cache(self.encode(encoder_token_ids, encoder_padding_mask)), axis=1
        )
        batch_size, max_length = ops.shape(cache)[0], ops.shape(cache)[3]
        end_id = ops.cast(end_id, "int32")

        def unfinished(index, token, done, tokens, caches):
            return ops.logical_and(index < max_length, ops.logical_not(ops.all(done)))

        def step(index, token, done, tokens, caches):
            logits, caches = self._decoder(
                token, index, list(caches), None, encoder_padding_mask, cross_caches
            )
            token = ops.top_k(ops.log_softmax(ops.cast(logits[:, -1], "float32"), axis=-1), 1)[1]
            token = ops.where(done[:, None], self.pad_id, ops.cast(token, "int32"))
            tokens = ops.slice_update(tokens, (0, index), token)
            return index + 1, token, ops.logical_or(done, token[:, 0] == end_id), tokens, tuple(caches)

        index, _, _, tokens, _ = ops.while_loop(
            unfinished,
            step,
            (
                ops.zeros((), "int32"),
                ops.full((batch_size, 1), start_id, "int32"),
                ops.zeros((batch_size,), "bool"),
                ops.full((batch_size, max_length), self.pad_id, "int32"),
                tuple(ops.unstack(cache, axis=1)),
            ),
        )
        return tokens, index

    def decoding_models(self, max_length, start_id=2, end_id=2):
        """Functional Keras models of the decoding parts, for export (one artifact each):

        - `"encoder"`: `encoder_token_ids`, `encoder_padding_mask` -> `cross_attention_cache`;
        - `"decoder_step"`: `decoder_token_ids` `(batch, 1)`, `index` `(1,)` (the position; exported
          signatures give every input a leading axis), `cache`
          (`init_cache(batch, max_length)`), `cross_attention_cache`, `encoder_padding_mask` ->
          `(logits, cache)`, i.e. `call_decoder_with_cache`;
        - `"greedy"`: `encoder_token_ids`, `encoder_padding_mask` -> the `(batch, max_length)` tokens
          of `greedy_search` (`pad_id` after a row's `end_id`).
        """
        head_dim = self.hidden_dim // self.num_heads
        source = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUT_NAMES[:2]}
        step = {
            "decoder_token_ids": keras.Input((1,), dtype="int32", name="decoder_token_ids"),
            "index": keras.Input((), dtype="int32", name="index"),
            **{
                name: keras.Input((self.num_layers, 2, length, self.num_heads, head_dim), name=name)
                for name, length in (("cache", max_length), ("cross_attention_cache", None))
            },
            "encoder_padding_mask": keras.Input((None,), dtype="int32", name="encoder_padding_mask"),
        }
        parts = {
            "encoder": (source, lambda ids, mask: self.cross_attention_cache(self.encode(ids, mask))),
            "decoder_step": (
                step,
                lambda ids, index, cache, cross, mask: self.call_decoder_with_cache(
                    None, mask, ids, cache, index[0], cross
                ),
            ),
            "greedy": (
                source,
                lambda ids, mask: self.greedy_search(
                    ids, mask, self.init_cache(ops.shape(ids)[0], max_length), start_id, end_id
                )[0],
            ),
        }
        return {
            name: keras.Model(inputs, _Method(self, function, name=name)(list(inputs.values())), name=name)
            for name, (inputs, function) in parts.items()
        }

    def beam_search(
        self, encoder_token_ids, encoder_padding_mask, *, beam=5, lenpen=1.0, max_len_a=0.0, max_len_b=200,
        min_len=1, unk_penalty=0.0, n_best=None, eos_id=2, unk_id=3,
    ):  # fmt: skip
        """fairseq's beam search (`generate.py --beam --lenpen`: IWSLT beam 5 lenpen 1.0, WMT beam 4
        lenpen 0.6), batched over sentences: the whole search a compiled loop (`ops.while_loop`) over the
        cached decoder, `macaron_decoding`.

        Rules (fairseq 0.6.0 as vendored by macaron-net @3a84e7a, `translation/fairseq/`:
        `sequence_generator.py` `SequenceGenerator._generate` with its inner `finalize_hypos` and
        `is_finished`; `search.py` `BeamSearch.step`; the defaults of `options.py` and `generate.py`):

        - A hypothesis' score is the sum of its tokens' log-probabilities, the `</s>` that ends it
          included. Every step `pad` gets log-probability -inf and `unk` loses `unk_penalty`
          (`--unkpen`, default 0: `unk` is allowed).
        - The decoder starts from `</s>` (eos). Step 0 expands the first beam only (all are equal);
          later steps rank `score + log p(token)` over all `beam x vocabulary` continuations of a
          sentence. The best `2 * beam` are the candidates.
        - Among the first `beam` candidates, each eos finishes its hypothesis if `step >= min_len`
          (`--min-len`, default 1: no empty translation), in candidate order, while the sentence has
          fewer than `beam` finished ones. Eos candidates never continue (before `min_len` they are
          dropped). The first `beam` non-eos candidates are the next beams; the cache is reordered
          to them.
        - Finished score: `score / length ** lenpen`, `length` counting the closing eos (fairseq's
          `(step + 1) ** len_penalty`; `--lenpen`, default 1; 0 ranks unnormalised scores).
        - Maximum length, eos excluded: `int(max_len_a * src_len + max_len_b)` (`--max-len-a` 0,
          `--max-len-b` 200), `src_len` the width of the batch's sources, i.e. the longest real
          source in the batch (fairseq's collater pads to it). At that step eos is forced: the live
          hypotheses end there, best eos score first, until the sentence has `beam`.
        - Early stop (fairseq's default; `--no-early-stop` is not implemented): a sentence is done as
          soon as it has `beam` finished hypotheses, even if a longer one could score better; the
          search stops when all are.
        - The finished hypotheses are sorted by score, best first (a stable sort).

        Each sentence's search is independent of the others': fairseq drops finished sentences from the
        batch; here they stay in a compiled loop (fixed shapes) until half of the batch is done, then
        the rest go on alone (`macaron_decoding.fairseq_beam_search`), which changes nothing.

        Args:
            encoder_token_ids, encoder_padding_mask: the sources `(batch, length)` (fairseq's end
                with `</s>` and are left-padded; any padding gives the same result).
            beam: hypotheses per sentence, 1 <= beam <= (vocabulary_size - 1) // 2 (fairseq allows
                up to vocabulary_size - 1; this bound keeps `2 * beam` real candidates at step 0).
            lenpen: length penalty exponent, any finite number.
            max_len_a, max_len_b: the maximum length `int(max_len_a * src_len + max_len_b)`, which
                must be <= max_positions - 1 (fairseq clips it to that instead).
            min_len: the first step at which a hypothesis may end.
            unk_penalty: subtracted from `unk_id`'s log-probability.
            n_best: `None`: return the best hypothesis only; an integer <= beam: the n best with
                their scores.
            eos_id, unk_id: fairseq's `</s>` = 2 and `<unk>` = 3 (`pad_id` is the model's).

        Returns:
            `n_best=None`: int32 NumPy array `(batch, length)`, each sentence's best hypothesis
            (ending with `eos_id`, without the leading one; `pad_id` after it). Otherwise
            `(tokens, scores)`: `(batch, n_best, length)` the same way and `(batch, n_best)` the
            normalised scores, best first.
        """
        beam, lenpen, min_len, max_length, token_bias = self._beam_search_settings(
            encoder_padding_mask, beam=beam, lenpen=lenpen, max_len_a=max_len_a, max_len_b=max_len_b,
            min_len=min_len, unk_penalty=unk_penalty, n_best=n_best, eos_id=eos_id, unk_id=unk_id,
        )  # fmt: skip
        batch_size, source_length = np.shape(encoder_token_ids)
        encode = self._compiled(
            "encoder", lambda ids, mask: self.cross_attention_cache(self.encode(ids, mask))
        )
        cross_attention_cache = ops.repeat(encode(encoder_token_ids, encoder_padding_mask), beam, axis=0)
        encoder_padding_mask = ops.repeat(ops.convert_to_tensor(encoder_padding_mask), beam, axis=0)
        capacity = min(max_length + 1, _first_capacity(source_length))
        finished = fairseq_beam_search(
            partial(
                self._compiled(("beam", beam), partial(self._beam_search_loop, beam)),
                (token_bias, np.int32(min_len), np.int32(max_length), np.int32(eos_id)),
            ),
            (cross_attention_cache, encoder_padding_mask),
            ops.unstack(self.init_cache(batch_size * beam, capacity), axis=1), batch_size=batch_size,
            beam=beam, capacity=capacity, max_length=max_length, eos_id=eos_id, pad_id=self.pad_id,
        )  # fmt: skip
        return ranked_hypotheses(*finished, lenpen, n_best)

    def _beam_search_settings(
        self, encoder_padding_mask, *, beam, lenpen, max_len_a, max_len_b, min_len, unk_penalty, n_best,
        eos_id, unk_id,
    ):  # fmt: skip
        """Checks `beam_search`'s arguments (raising `OdezooError`) and returns `(beam, lenpen, min_len,
        max_length, token_bias)`: `max_length` the most tokens before the closing eos, `token_bias` the
        `(vocabulary_size,)` term added to every step's log-probabilities (-inf at pad, -unk_penalty
        at unk)."""
        vocabulary_size = self.vocabulary_size
        beam = check_integer("beam", beam, 1)
        if beam > (vocabulary_size - 1) // 2:
            raise OdezooError(
                f"`beam` must be <= (vocabulary_size - 1) // 2 = {(vocabulary_size - 1) // 2}. "
                f"Received: beam={beam}"
            )
        lenpen = check_number("lenpen", lenpen)
        max_len_a = check_number("max_len_a", max_len_a, 0)
        max_len_b = check_integer("max_len_b", max_len_b)
        min_len = check_integer("min_len", min_len)
        unk_penalty = check_number("unk_penalty", unk_penalty)
        if n_best is not None and check_integer("n_best", n_best, 1) > beam:
            raise OdezooError(f"`n_best` must be <= beam={beam}. Received: n_best={n_best}")
        for name, value in (("eos_id", eos_id), ("unk_id", unk_id)):
            if check_integer(name, value) >= vocabulary_size:
                raise OdezooError(
                    f"`{name}` must be < vocabulary_size={vocabulary_size}. Received: {name}={value}"
                )
        max_length = self._beam_max_length(encoder_padding_mask, max_len_a, max_len_b)
        token_bias = np.zeros(vocabulary_size, "float32")
        token_bias[unk_id] -= unk_penalty
        token_bias[self.pad_id] = -np.inf
        return beam, lenpen, min_len, max_length, token_bias

    def _beam_max_length(self, encoder_padding_mask, max_len_a, max_len_b):
        """`int(max_len_a * src_len + max_len_b)`, `src_len` the longest real source; raises `OdezooError`
        where it is over `max_positions - 1`."""
        src_len = int(np.asarray(encoder_padding_mask).sum(axis=1).max())
        max_length = int(max_len_a * src_len + max_len_b)
        if max_length > self.max_positions - 1:
            raise OdezooError(
                f"The maximum length `int(max_len_a * src_len + max_len_b)` must be <= max_positions - 1 = "
                f"{self.max_positions - 1}. Received: max_len_a={max_len_a}, src_len={src_len}, "
                f"max_len_b={max_len_b}: {max_length}"
            )
        return max_length

    def preset_tokenizer(self):
        """The `MacaronTokenizer` saved in the preset folder this model was loaded from (see
        `macaron_tokenizer.preset_tokenizer`)."""
        return preset_tokenizer(self)

    def translate(
        self, sentences, *, tokenizer=None, beam=5, lenpen=1.0, max_len_a=0.0, max_len_b=200, batch_size=32,
        tokenized=False,
    ):  # fmt: skip
        """Translates `sentences` (a list of str) with `beam_search`, in batches of `batch_size` sources
        of similar length (as fairseq's `generate.py` orders them), with a progress bar on a terminal and
        progress lines and a summary on stderr otherwise (`odezoo._progress.progress`).

        Args:
            sentences: the source sentences.
            tokenizer: a `MacaronTokenizer`; `None`: the preset's (`preset_tokenizer()`). The model's
                config holds the architecture only; the tokenizer is a preset asset.
            beam, lenpen, max_len_a, max_len_b: as in `beam_search`.
            batch_size: sources per beam search.
            tokenized: `sentences` are lines of the dictionary's subword tokens (as in an IWSLT14 file)
                and the translations are returned as token lines with the BPE marks removed (fairseq's
                `generate.py --remove-bpe` output), not detokenised.

        Returns:
            The translations (list of str, in the order of `sentences`), detokenised by `tokenizer`.
        """
        batch_size = check_integer("batch_size", batch_size, 1)
        tokenizer = self.preset_tokenizer() if tokenizer is None else tokenizer
        if not hasattr(tokenizer, "dictionary"):
            raise OdezooError(
                "`tokenizer` must be a MacaronTokenizer (e.g. model.preset_tokenizer()) or None. "
                f"Received: {tokenizer!r} ({type(tokenizer).__name__})"
            )
        if len(tokenizer.dictionary) != self.vocabulary_size:
            raise OdezooError(
                f"The tokenizer's dictionary has {len(tokenizer.dictionary)} symbols but this model's "
                f"vocabulary_size is {self.vocabulary_size}: use the tokenizer saved with the model's preset."
            )
        sentences = check_sentences(sentences)
        sources = tokenizer.encode_sources(sentences, tokenized=tokenized)
        for i, (sentence, ids) in enumerate(zip(sentences, sources)):
            if len(ids) == 1:
                raise OdezooError(
                    f"Sentence {i} is empty after tokenisation (received {sentence!r}): translate takes "
                    "sentences with at least one token; leave out empty ones."
                )
            if len(ids) > self.max_positions:
                raise OdezooError(
                    f"Sentence {i} has {len(ids)} tokens with its </s>, more than the model's max_positions="
                    f"{self.max_positions} (received {sentence!r:.80}): split it into shorter sentences."
                )
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        translations = [None] * len(sources)
        with progress(total=len(sources), desc="translating", unit="sentences") as bar:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                tokens = self.beam_search(
                    *tokenizer.pad([sources[i] for i in rows]),
                    beam=beam, lenpen=lenpen, max_len_a=max_len_a, max_len_b=max_len_b,
                    eos_id=tokenizer.dictionary.EOS_ID, unk_id=tokenizer.dictionary.UNK_ID,
                )  # fmt: skip
                for i, translation in zip(rows, tokenizer.decode(tokens, detokenize=not tokenized)):
                    translations[i] = translation
                bar.update(len(rows))
        return translations


def _first_capacity(source_length):
    """The positions a beam search first makes room for, a multiple of 16 (few shapes to compile): the
    source's length and 8 more (most translations are about as long); a longer search grows it."""
    return 16 * -(-(source_length + 8) // 16)


def _token_embeddings(vocabulary_size, hidden_dim, pad_id, share_all_embeddings, dtype):
    """The token embeddings `(encoder's, decoder's, output projection)`, `~ N(0, 1/E)` with a zero `pad_id`
    row: with `share_all_embeddings` one `ReversibleEmbedding` twice and `None` (it projects the logits
    too), else two `Embedding`s and a `Dense` projection."""
    embedding_init = PaddedNormal(hidden_dim**-0.5, pad_id)
    if share_all_embeddings:
        shared = layers.ReversibleEmbedding(
            vocabulary_size, hidden_dim, embeddings_initializer=embedding_init, name="token_embedding",
            dtype=dtype,
        )  # fmt: skip
        return shared, shared, None
    encoder_embedding, decoder_embedding = (
        layers.Embedding(
            vocabulary_size, hidden_dim, embeddings_initializer=embedding_init, name=name, dtype=dtype
        )
        for name in ("encoder_token_embedding", "decoder_token_embedding")
    )
    output_projection = layers.Dense(
        vocabulary_size, use_bias=False, name="output_projection", dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=hidden_dim**-0.5),
    )  # fmt: skip
    return encoder_embedding, decoder_embedding, output_projection


def _layer_stacks(num_layers, num_heads, intermediate_dim, *, normalize_before, dtype, **layer_kwargs):
    """`(encoder layers, decoder layers, encoder norm, decoder norm)`: `num_layers` of each kind
    (`layer_kwargs`: the scheme and the dropouts) and the final LayerNorms (`None` in post-norm form)."""
    layer_kwargs.update(normalize_before=normalize_before, dtype=dtype)
    encoder_layers = [
        MacaronEncoderLayer(num_heads, intermediate_dim, name=f"encoder_layer_{i}", **layer_kwargs)
        for i in range(num_layers)
    ]
    decoder_layers = [
        MacaronDecoderLayer(num_heads, intermediate_dim, name=f"decoder_layer_{i}", **layer_kwargs)
        for i in range(num_layers)
    ]
    norms = (
        layer_norm(name, dtype=dtype) if normalize_before else None
        for name in ("encoder_norm", "decoder_norm")
    )
    return encoder_layers, decoder_layers, *norms


class _Method(keras.layers.Layer):
    """`function(*inputs)` of the tracked `model`'s tensors, as a layer of a functional model."""

    def __init__(self, model, function, **kwargs):
        super().__init__(**kwargs)
        self.model, self.function = model, function

    def call(self, inputs):
        return self.function(*inputs)
