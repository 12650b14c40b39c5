"""Macaron Net: the Transformer layer as a Strang–Marchuk splitting step, FFN → attention → FFN
(Lu, Li, He, Sun, Dong, Qin, Wang, Liu, 2019), in fairseq's translation model."""

import math

import keras
import numpy as np
from keras import layers, ops

from odezoo.errors import check_integer
from odezoo.models.macaron.macaron_layers import (
    LAYER_NORM_EPSILON,
    MacaronDecoderLayer,
    MacaronEncoderLayer,
    PaddedNormal,
    SinusoidalPositionEmbedding,
    check_rate,
)
from odezoo.pretrained import PretrainedMixin

INPUT_NAMES = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")

# The paper's translation architectures (models.md 2.2; fairseq `*_macaron_v2` and `*_big_t2t_macaron`):
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
    self-attention keys and values (`init_cache`); `greedy_decode` is built on them.

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
        >>> tokens = model.greedy_decode(source_ids, source_mask, max_length=200)

    Reference: https://arxiv.org/abs/1906.02762
    """

    TASK = "translation"
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
        vocabulary_size = check_integer("vocabulary_size", vocabulary_size, 1)
        num_layers = check_integer("num_layers", num_layers, 1)
        hidden_dim = check_integer("hidden_dim", hidden_dim, 4)
        pad_id = check_integer("pad_id", pad_id)
        if pad_id >= vocabulary_size:
            raise ValueError(
                f"`pad_id` must be < vocabulary_size={vocabulary_size}. Received: pad_id={pad_id}"
            )
        check_rate("dropout", dropout)

        # === Layers ===
        embedding_init = PaddedNormal(hidden_dim**-0.5, pad_id)
        if share_all_embeddings:
            self.token_embedding = layers.ReversibleEmbedding(
                vocabulary_size, hidden_dim, embeddings_initializer=embedding_init, name="token_embedding",
                dtype=dtype,
            )  # fmt: skip
            self.encoder_embedding = self.decoder_embedding = self.token_embedding
            self.output_projection = None
        else:
            self.encoder_embedding, self.decoder_embedding = (
                layers.Embedding(
                    vocabulary_size, hidden_dim, embeddings_initializer=embedding_init, name=name, dtype=dtype
                )
                for name in ("encoder_token_embedding", "decoder_token_embedding")
            )
            self.output_projection = layers.Dense(
                vocabulary_size, use_bias=False, name="output_projection", dtype=dtype,
                kernel_initializer=keras.initializers.RandomNormal(stddev=hidden_dim**-0.5),
            )  # fmt: skip
        self.position_embedding = SinusoidalPositionEmbedding(
            hidden_dim, max_positions, pad_id, name="position_embedding", dtype=dtype
        )
        self.embedding_dropout = layers.Dropout(dropout, name="embedding_dropout", dtype=dtype)
        layer_kwargs = {
            "scheme": scheme,
            "normalize_before": normalize_before,
            "dropout": dropout,
            "attention_dropout": attention_dropout,
            "activation_dropout": activation_dropout,
            "dtype": dtype,
        }
        self.encoder_layers = [
            MacaronEncoderLayer(num_heads, intermediate_dim, name=f"encoder_layer_{i}", **layer_kwargs)
            for i in range(num_layers)
        ]
        self.decoder_layers = [
            MacaronDecoderLayer(num_heads, intermediate_dim, name=f"decoder_layer_{i}", **layer_kwargs)
            for i in range(num_layers)
        ]
        self.encoder_norm, self.decoder_norm = (
            layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)
            if normalize_before
            else None
            for name in ("encoder_norm", "decoder_norm")
        )

        # === Functional Model ===
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUT_NAMES}
        encoder_output = self._encode(inputs["encoder_token_ids"], inputs["encoder_padding_mask"])
        x = self._embed(self.decoder_embedding, inputs["decoder_token_ids"], inputs["decoder_padding_mask"])
        for layer in self.decoder_layers:
            x = layer(
                x,
                encoder_output,
                decoder_padding_mask=inputs["decoder_padding_mask"],
                encoder_padding_mask=inputs["encoder_padding_mask"],
            )
        logits = self._logits(x)
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

    def call_decoder_with_cache(
        self, encoder_output, encoder_padding_mask, decoder_token_ids, cache, cache_update_index
    ):
        """Runs the decoder on `decoder_token_ids` `(batch, T)`, the target tokens at positions
        `cache_update_index .. + T - 1` (all real), attending to the cached earlier ones.

        Returns:
            `(logits, cache)`: logits `(batch, T, vocabulary_size)` and the cache with these
            tokens' keys and values written in.
        """
        token_ids = ops.convert_to_tensor(decoder_token_ids)
        x = self._embed(self.decoder_embedding, token_ids, ops.ones_like(token_ids), cache_update_index)
        caches = []
        for i, layer in enumerate(self.decoder_layers):
            x, layer_cache = layer(
                x,
                encoder_output,
                encoder_padding_mask=ops.convert_to_tensor(encoder_padding_mask),
                self_attention_cache=cache[:, i],
                cache_update_index=cache_update_index,
            )
            caches.append(layer_cache)
        return self._logits(x), ops.stack(caches, axis=1)

    def greedy_decode(self, encoder_token_ids, encoder_padding_mask, *, max_length, start_id=2, end_id=2):
        """Greedy translation: each step appends the arg-max token, until every sequence has
        produced `end_id` or `max_length` tokens exist.

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
            raise ValueError(
                f"`max_length` must be <= max_positions={self.max_positions}. "
                f"Received: max_length={max_length}"
            )
        encoder_output = self.encode(encoder_token_ids, encoder_padding_mask)
        batch_size = encoder_output.shape[0]
        cache = self.init_cache(batch_size, max_length)
        token = np.full((batch_size, 1), start_id, "int32")
        done = np.zeros(batch_size, bool)
        generated = []
        for step in range(max_length):
            logits, cache = self.call_decoder_with_cache(
                encoder_output, encoder_padding_mask, token, cache, step
            )
            token = np.asarray(ops.argmax(logits[:, -1], axis=-1)).astype("int32")
            token = np.where(done, self.pad_id, token)[:, None]
            generated.append(token)
            done |= token[:, 0] == end_id
            if done.all():
                break
        return np.concatenate(generated, axis=1)
