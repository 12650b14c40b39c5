"""Layers of Macaron Net: fairseq's multi-head attention and sinusoidal positions, the feed-forward
network, and one encoder and one decoder layer whose splitting scheme is a hyperparameter."""

import math

import keras
import numpy as np
from keras import layers, ops

from odezoo.errors import OdezooError, check_integer

SCHEMES = ("strang", "lie_trotter")  # splittings of two operators; schemes for one f: odezoo.models._schemes
LAYER_NORM_EPSILON = 1e-5  # PyTorch's default, fairseq's value (Keras' default is 1e-3)


def check_rate(name, value):
    """Raises unless `value` is a dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise OdezooError(f"`{name}` must be a rate in [0, 1). Received: {name}={value!r}")


def check_model_settings(vocabulary_size, num_layers, hidden_dim, pad_id, dropout):
    """The settings the Macaron models share, checked: `(vocabulary_size, num_layers, hidden_dim, pad_id)`
    as ints, `pad_id < vocabulary_size`, `dropout` a rate."""
    vocabulary_size = check_integer("vocabulary_size", vocabulary_size, 1)
    num_layers = check_integer("num_layers", num_layers, 1)
    hidden_dim = check_integer("hidden_dim", hidden_dim, 4)
    pad_id = check_integer("pad_id", pad_id)
    if pad_id >= vocabulary_size:
        raise OdezooError(f"`pad_id` must be < vocabulary_size={vocabulary_size}. Received: pad_id={pad_id}")
    check_rate("dropout", dropout)
    return vocabulary_size, num_layers, hidden_dim, pad_id


@keras.saving.register_keras_serializable(package="odezoo")
def erf_gelu(x):
    """The exact GELU as the BERT fork writes it, `x/2 · (1 + erf(x/√2))`: Keras' `gelu` by another
    formula. TensorFlow lowers Keras' `gelu` to an `Erfc` op, which ONNX lacks (tf2onnx writes it
    anyway: an invalid model); this one has `Erf`, which ONNX and LiteRT run."""
    return 0.5 * x * (1.0 + ops.erf(x * ops.cast(1 / math.sqrt(2.0), x.dtype)))


def layer_norm(name, *, affine=True, dtype=None):
    """fairseq's LayerNorm (eps 1e-5), with or without its scale and shift."""
    return layers.LayerNormalization(
        epsilon=LAYER_NORM_EPSILON, center=affine, scale=affine, name=name, dtype=dtype
    )


@keras.saving.register_keras_serializable(package="odezoo")
class PaddedNormal(keras.initializers.Initializer):
    """fairseq's token-embedding init: every entry `~ N(0, stddev²)`, except the row `pad_id`, which is 0.

    Args:
        stddev: standard deviation (fairseq: `hidden_dim ** -0.5`).
        pad_id: the padding token's row.
        seed: optional seed.
    """

    def __init__(self, stddev, pad_id, seed=None):
        self.stddev = float(stddev)
        self.pad_id = int(pad_id)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        values = keras.random.normal(shape, stddev=self.stddev, dtype=dtype, seed=self.seed)
        keep = ops.cast(ops.not_equal(ops.arange(shape[0]), self.pad_id), values.dtype)
        return values * keep[:, None]

    def get_config(self):
        return {"stddev": self.stddev, "pad_id": self.pad_id, "seed": self.seed}


def sinusoid_table(num_positions, hidden_dim, pad_id):
    """fairseq's sinusoid table `(num_positions, hidden_dim)`, computed in float32 as fairseq does:
    row `p` is `[sin(p·f), cos(p·f)]` with `f_i = exp(-i·ln(10000) / (half - 1))`, `i < half =
    hidden_dim // 2` (sines first, then cosines; a zero column is appended for an odd `hidden_dim`),
    and row `pad_id` is 0."""
    half = hidden_dim // 2
    frequencies = np.exp(np.arange(half, dtype="float32") * np.float32(-math.log(10000) / (half - 1)))
    angles = np.arange(num_positions, dtype="float32")[:, None] * frequencies[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles), np.zeros((num_positions, hidden_dim % 2))], 1)
    table[pad_id] = 0.0
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="odezoo")
class SinusoidalPositionEmbedding(keras.layers.Layer):
    """fairseq's sinusoidal positions, from a padding mask.

    Real tokens are numbered from `pad_id + 1` in reading order and padding keeps position `pad_id`,
    whose row is zero: `p_t = pad_id + (start_index + Σ_{s<=t} m_s) · m_t` for the mask `m` (so the
    left-padded sources and right-padded targets of fairseq get the same numbers as unpadded ones).
    Row `p` of the table is `[sin(p·f_0..f_{h-1}), cos(p·f_0..f_{h-1})]`, `h = hidden_dim // 2`,
    `f_i = 10000^(-i/(h-1))`; see `sinusoid_table`. Nothing is trained or stored.

    keras-hub's `SinePositionEncoding` differs in three ways, so its values cannot stand in for these:
    it interleaves sines and cosines (`sin` at even, `cos` at odd features), its frequencies are
    `10000^(-2i/d)` (denominator `d`, not `h - 1`), and it numbers positions from 0 with no padding
    offset and no zero row.

    Args:
        hidden_dim: the embedding width (>= 4).
        max_positions: the number of real positions the table holds (fairseq's `max_*_positions`);
            the table has `max_positions + pad_id + 1` rows.
        pad_id: the padding token's id, fairseq's `padding_idx`.

    Call arguments:
        padding_mask: `(batch, length)`, 1 at real tokens, 0 at padding.
        start_index: positions already decoded (incremental decoding), added to every real token's
            number.
    """

    def __init__(self, hidden_dim, max_positions=1024, pad_id=1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_integer("hidden_dim", hidden_dim, 4)
        self.max_positions = check_integer("max_positions", max_positions, 1)
        self.pad_id = check_integer("pad_id", pad_id)
        self.table = sinusoid_table(self.max_positions + self.pad_id + 1, self.hidden_dim, self.pad_id)

    def call(self, padding_mask, start_index=0):
        mask = ops.cast(padding_mask, "int32")
        positions = self.pad_id + (start_index + ops.cumsum(mask, axis=1)) * mask
        return ops.cast(ops.take(ops.convert_to_tensor(self.table), positions, axis=0), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "max_positions": self.max_positions,
            "pad_id": self.pad_id,
        }


@keras.saving.register_keras_serializable(package="odezoo")
class MultiHeadAttention(keras.layers.Layer):
    """fairseq's multi-head attention, with an optional key/value cache for incremental decoding.

        q = (x W_q + b_q) · d_h^(-1/2),   k = y W_k + b_k,   v = y W_v + b_v     (split into H heads)
        out = concat_h(Drop(softmax(q_h k_hᵀ + M)) v_h) W_o + b_o

    with `d_h = hidden_dim / H` and `M = -1e9` where a key is padding or (causal) in the future of
    the query. Init as fairseq: the stacked in-projection `[W_q; W_k; W_v]` (3E x E) and `W_o` (E x E)
    Xavier-uniform, so each of `W_q, W_k, W_v` is uniform in `±sqrt(6 / (4E))` and `W_o` in
    `±sqrt(6 / (2E))`; biases 0. Kernels are Keras-style `(in, out)`: a fairseq `in_proj_weight`
    maps to them through its row blocks q | k | v, transposed.

    Args:
        num_heads: H; must divide the input's last dimension.
        dropout: dropout rate on the attention weights.

    Call arguments:
        query: `(batch, T, E)`.
        value: `(batch, S, E)` to attend to; `None` is self-attention.
        key_mask: `(batch, S)` (the cache length with a cache), 1 where a key may be attended to.
        causal: mask keys after the query; with a cache, query `t` sits at `cache_update_index + t`.
        cache: `(batch, 2, max_length, H, d_h)` keys and values of earlier steps; the new ones are
            written at `cache_update_index` and attention runs over the whole cache.
        cache_update_index: where the `T` new keys and values go in the cache.
        key_value: `(batch, 2, S, H, d_h)`, `project_key_value(value)` computed once (the decoder's
            attention to a fixed encoder output); `value` is then not used.

    Returns:
        `(batch, T, E)`, and the updated cache when one is given.
    """

    def __init__(self, num_heads, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_integer("num_heads", num_heads, 1)
        check_rate("dropout", dropout)
        self.dropout = dropout
        self.dropout_layer = layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, query_shape):
        hidden_dim = query_shape[-1]
        if hidden_dim % self.num_heads:
            raise OdezooError(
                "`hidden_dim` must be a multiple of `num_heads`. "
                f"Received: hidden_dim={hidden_dim}, num_heads={self.num_heads}"
            )
        self.head_dim = hidden_dim // self.num_heads
        in_projection = keras.initializers.VarianceScaling(0.5, "fan_avg", "uniform")  # see the docstring
        self.query_dense, self.key_dense, self.value_dense = (
            layers.Dense(hidden_dim, kernel_initializer=in_projection, name=name, dtype=self.dtype_policy)
            for name in ("query", "key", "value")
        )
        self.output_dense = layers.Dense(hidden_dim, name="output", dtype=self.dtype_policy)
        for dense in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            dense.build((None, None, hidden_dim))

    def _heads(self, x):
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_dim))

    def project_key_value(self, value):
        """The keys and values of `value` `(batch, S, E)`, stacked: `(batch, 2, S, H, d_h)`."""
        return ops.stack([self._heads(self.key_dense(value)), self._heads(self.value_dense(value))], axis=1)

    def call(
        self,
        query,
        value=None,
        key_mask=None,
        causal=False,
        cache=None,
        cache_update_index=0,
        key_value=None,
        training=None,
    ):
        q = self._heads(self.query_dense(query)) * ops.cast(self.head_dim**-0.5, self.compute_dtype)
        if key_value is None:
            key_value = self.project_key_value(query if value is None else value)
        if cache is not None:
            cache = ops.slice_update(cache, (0, 0, cache_update_index, 0, 0), key_value)
            key_value = cache
        k, v = key_value[:, 0], key_value[:, 1]
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k)
        allowed = None
        if key_mask is not None:
            allowed = ops.expand_dims(ops.cast(key_mask, "bool"), (1, 2))  # not [:, None]: LiteRT lacks it
        if causal:
            query_positions = cache_update_index + ops.arange(ops.shape(q)[1])
            past = ops.arange(ops.shape(k)[1])[None, :] <= query_positions[:, None]
            allowed = past if allowed is None else ops.logical_and(allowed, past)
        if allowed is not None:
            scores = ops.where(allowed, scores, ops.cast(-1e9, scores.dtype))
        # softmax written out: `ops.softmax` warns on the one-key attention of a first decoding step
        weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        weights = self.dropout_layer(weights / ops.sum(weights, axis=-1, keepdims=True), training=training)
        heads = ops.einsum("bhqk,bkhd->bqhd", weights, v)
        shape = ops.shape(heads)
        out = self.output_dense(ops.reshape(heads, (shape[0], shape[1], -1)))
        return out if cache is None else (out, cache)

    def compute_output_shape(self, query_shape):
        return query_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout}


FFN_INITS = ("xavier", "kaiming")


def ffn_initializer(init, output):
    """An FFN kernel's initialiser: `"xavier"`, Xavier-uniform (fairseq's translation code); `"kaiming"`,
    the BERT fork's Kaiming-normal, fan-in, gain 1 (inner) or sqrt(2) (output projection, 'relu')."""
    if init == "xavier":
        return "glorot_uniform"
    return keras.initializers.VarianceScaling(2.0 if output else 1.0, "fan_in", "untruncated_normal")


@keras.saving.register_keras_serializable(package="odezoo")
class FeedForward(keras.layers.Layer):
    """`FFN(x) = W_2 · Drop_act(act(W_1 x + b_1)) + b_2`, inner width `intermediate_dim`, output the
    input's width. Zero biases; kernels as `ffn_initializer(init, ...)`.

    Args:
        intermediate_dim: the inner width.
        activation: a Keras activation (`"relu"`; `erf_gelu` is the exact GELU).
        activation_dropout: dropout rate after the activation (fairseq's `relu_dropout`).
        init: `"xavier"` (fairseq's translation code) or `"kaiming"` (the BERT fork).
    """

    def __init__(self, intermediate_dim, activation="relu", activation_dropout=0.0, init="xavier", **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = check_integer("intermediate_dim", intermediate_dim, 1)
        check_rate("activation_dropout", activation_dropout)
        if init not in FFN_INITS:
            raise OdezooError(f"`init` must be one of {FFN_INITS}. Received: init={init!r}")
        self.activation = activation
        self.activation_dropout = activation_dropout
        self.init = init
        self.inner_dense = layers.Dense(
            intermediate_dim,
            activation=activation,
            kernel_initializer=ffn_initializer(init, output=False),
            name="inner",
            dtype=self.dtype_policy,
        )
        self.dropout_layer = layers.Dropout(activation_dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.inner_dense.build(input_shape)
        initializer = ffn_initializer(self.init, output=True)
        self.output_dense = layers.Dense(
            input_shape[-1], kernel_initializer=initializer, name="output", dtype=self.dtype_policy
        )
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))

    def call(self, x, training=None):
        return self.output_dense(self.dropout_layer(self.inner_dense(x), training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "intermediate_dim": self.intermediate_dim,
            "activation": self.activation,
            "activation_dropout": self.activation_dropout,
            "init": self.init,
        }


class _SplitLayer(keras.layers.Layer):
    """What the encoder and decoder layers share: the arguments, the FFNs and the residual steps.

    A sub-layer `f` with LayerNorm `LN` and factor `c` is the step `x + c · Drop(f(LN(x)))` in
    pre-norm form (`normalize_before=True`) and `LN(x + c · Drop(f(x)))` in post-norm form.
    `scheme="strang"` (Macaron) wraps the attention between two half steps of FFNs of inner width
    `intermediate_dim / 2` each (`c = 1/2`); `scheme="lie_trotter"` is the Transformer layer, one
    full step of an FFN of width `intermediate_dim` (`c = 1`). With affine LayerNorms the Strang
    layer has exactly `3 · hidden_dim` more parameters (one more output bias and one more LayerNorm).
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        *,
        scheme="strang",
        normalize_before=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation="relu",
        macaron_activation="relu",
        norm_affine=True,
        ffn_init="xavier",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if scheme not in SCHEMES:
            raise OdezooError(f"`scheme` must be one of {SCHEMES}. Received: scheme={scheme!r}")
        intermediate_dim = check_integer("intermediate_dim", intermediate_dim, 1)
        if scheme == "strang" and intermediate_dim % 2:
            raise OdezooError(
                "`intermediate_dim` must be even with scheme='strang' (two FFNs of half the width). "
                f"Received: intermediate_dim={intermediate_dim}"
            )
        for name, rate in [
            ("dropout", dropout),
            ("attention_dropout", attention_dropout),
            ("activation_dropout", activation_dropout),
        ]:
            check_rate(name, rate)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.scheme = scheme
        self.normalize_before = bool(normalize_before)
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.activation = activation
        self.macaron_activation = macaron_activation
        self.norm_affine = bool(norm_affine)
        self.ffn_init = ffn_init
        self.factor = 0.5 if scheme == "strang" else 1.0
        width = intermediate_dim // 2 if scheme == "strang" else intermediate_dim
        if scheme == "strang":
            self.macaron_ffn = self._ffn("macaron_ffn", width, macaron_activation)
            self.macaron_ffn_norm = self._norm("macaron_ffn_norm")
        self.ffn = self._ffn("ffn", width, activation)
        self.ffn_norm = self._norm("ffn_norm")
        self.self_attention = self._attention("self_attention")
        self.self_attention_norm = self._norm("self_attention_norm")
        self.dropout_layer = layers.Dropout(dropout, dtype=self.dtype_policy)

    def _ffn(self, name, width, activation):
        return FeedForward(
            width, activation, self.activation_dropout, self.ffn_init, name=name, dtype=self.dtype_policy
        )

    def _norm(self, name):
        return layer_norm(name, affine=self.norm_affine, dtype=self.dtype_policy)

    def _attention(self, name):
        return MultiHeadAttention(self.num_heads, self.attention_dropout, name=name, dtype=self.dtype_policy)

    def _sublayers(self):
        """`(sub-layer, its LayerNorm)` in the order they run."""
        raise NotImplementedError

    def build(self, input_shape):
        for sublayer, norm in self._sublayers():
            norm.build(input_shape)
            sublayer.build(input_shape)

    def _before(self, x, norm):
        return norm(x) if self.normalize_before else x

    def _after(self, x, y, norm, factor, training):
        x = x + factor * self.dropout_layer(y, training=training)
        return x if self.normalize_before else norm(x)

    def _ffn_step(self, x, ffn, norm, training):
        return self._after(x, ffn(self._before(x, norm), training=training), norm, self.factor, training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "scheme": self.scheme,
            "normalize_before": self.normalize_before,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation_dropout": self.activation_dropout,
            "activation": self.activation,
            "macaron_activation": self.macaron_activation,
            "norm_affine": self.norm_affine,
            "ffn_init": self.ffn_init,
        }


@keras.saving.register_keras_serializable(package="odezoo")
class MacaronEncoderLayer(_SplitLayer):
    """An encoder layer as a splitting scheme for `dx/dt = F(x) + G(x)` (`F` the FFN, `G` attention).

    `scheme="strang"` (Macaron, pre-norm form; the LayerNorms are fairseq's `layer_norms.{2,0,1}`):

        x = x + 1/2 · Drop(FFN_a(LN_a(x)))         # macaron_ffn, width intermediate_dim / 2
        x = x +       Drop(SelfAttn(LN_0(x)))      # self_attention
        x = x + 1/2 · Drop(FFN_b(LN_1(x)))         # ffn, width intermediate_dim / 2

    `scheme="lie_trotter"` (the Transformer layer) keeps the last two lines with factor 1 and
    width `intermediate_dim`. Post-norm (`normalize_before=False`) applies each LayerNorm after
    its addition instead. The first FFN's activation is `macaron_activation`, the second's
    `activation` (Macaron-BERT: ReLU and GELU); `norm_affine=False` drops the LayerNorms' scale
    and shift and `ffn_init="kaiming"` initialises the FFNs as the BERT fork (Macaron-BERT).

    Args:
        num_heads: attention heads.
        intermediate_dim: the Transformer baseline's FFN width `d_ff`.
        scheme: `"strang"` or `"lie_trotter"`.
        normalize_before: pre-norm (`True`) or post-norm.
        dropout: on each sub-layer's output before its residual addition.
        attention_dropout: on the attention weights.
        activation_dropout: after the FFNs' activation.
        activation, macaron_activation: the FFNs' activations.
        norm_affine: LayerNorms with scale and shift.
        ffn_init: the FFNs' kernel init, `"xavier"` or `"kaiming"` (see `ffn_initializer`).

    Call arguments:
        x: `(batch, length, hidden_dim)`.
        padding_mask: `(batch, length)`, 1 at real tokens.
    """

    def _sublayers(self):
        macaron = [(self.macaron_ffn, self.macaron_ffn_norm)] if self.scheme == "strang" else []
        return [*macaron, (self.self_attention, self.self_attention_norm), (self.ffn, self.ffn_norm)]

    def call(self, x, padding_mask=None, training=None):
        if self.scheme == "strang":
            x = self._ffn_step(x, self.macaron_ffn, self.macaron_ffn_norm, training)
        norm = self.self_attention_norm
        y = self.self_attention(self._before(x, norm), key_mask=padding_mask, training=training)
        x = self._after(x, y, norm, 1.0, training)
        return self._ffn_step(x, self.ffn, self.ffn_norm, training)


@keras.saving.register_keras_serializable(package="odezoo")
class MacaronDecoderLayer(_SplitLayer):
    """A decoder layer: `MacaronEncoderLayer`'s splitting with encoder-decoder attention after the
    (causal) self-attention. `scheme="strang"`, pre-norm:

        x = x + 1/2 · Drop(FFN_a(LN_a(x)))                      # macaron_ffn
        x = x +       Drop(CausalSelfAttn(LN_s(x)))             # self_attention
        x = x +       Drop(CrossAttn(LN_c(x), encoder_output))  # cross_attention
        x = x + 1/2 · Drop(FFN_b(LN_f(x)))                      # ffn

    `scheme="lie_trotter"` drops the first line and uses factor 1 and width `intermediate_dim`.
    Arguments as `MacaronEncoderLayer`.

    Call arguments:
        x: `(batch, T, hidden_dim)`.
        encoder_output: `(batch, S, hidden_dim)`.
        decoder_padding_mask: `(batch, T)` (the cache length with a cache), 1 at real tokens.
        encoder_padding_mask: `(batch, S)`, 1 at real tokens.
        self_attention_cache: `(batch, 2, max_length, num_heads, head_dim)`, see `MultiHeadAttention`.
        cache_update_index: the position of `x`'s first token.
        cross_attention_cache: `(batch, 2, S, num_heads, head_dim)`, the cross-attention's
            `project_key_value(encoder_output)`; `encoder_output` is then not used.

    Returns:
        `(batch, T, hidden_dim)`, and the updated cache when one is given.
    """

    def __init__(self, num_heads, intermediate_dim, **kwargs):
        super().__init__(num_heads, intermediate_dim, **kwargs)
        self.cross_attention = self._attention("cross_attention")
        self.cross_attention_norm = self._norm("cross_attention_norm")

    def _sublayers(self):
        macaron = [(self.macaron_ffn, self.macaron_ffn_norm)] if self.scheme == "strang" else []
        return [
            *macaron,
            (self.self_attention, self.self_attention_norm),
            (self.cross_attention, self.cross_attention_norm),
            (self.ffn, self.ffn_norm),
        ]

    def call(
        self,
        x,
        encoder_output,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        self_attention_cache=None,
        cache_update_index=0,
        cross_attention_cache=None,
        training=None,
    ):
        if self.scheme == "strang":
            x = self._ffn_step(x, self.macaron_ffn, self.macaron_ffn_norm, training)
        norm = self.self_attention_norm
        y = self.self_attention(
            self._before(x, norm),
            key_mask=decoder_padding_mask,
            causal=True,
            cache=self_attention_cache,
            cache_update_index=cache_update_index,
            training=training,
        )
        if self_attention_cache is not None:
            y, self_attention_cache = y
        x = self._after(x, y, norm, 1.0, training)
        norm = self.cross_attention_norm
        y = self.cross_attention(
            self._before(x, norm),
            encoder_output,
            key_mask=encoder_padding_mask,
            key_value=cross_attention_cache,
            training=training,
        )
        x = self._after(x, y, norm, 1.0, training)
        x = self._ffn_step(x, self.ffn, self.ffn_norm, training)
        return x if self_attention_cache is None else (x, self_attention_cache)
