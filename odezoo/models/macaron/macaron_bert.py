"""Macaron-BERT: BERT-base whose encoder layers are Strang–Marchuk splitting steps (Lu et al., 2019,
GLUE), in the authors' fairseq fork (`transformer_bert_base_macaron`, `transformer_classifier_*`)."""

import math

import keras
import numpy as np
from keras import layers, ops
from tqdm.auto import tqdm

from odezoo.errors import OdezooError, check_integer
from odezoo.models.macaron.macaron import MacaronTransformer
from odezoo.models.macaron.macaron_bert_inputs import CLS_ID, MASK_ID, SEGMENT_PAD_ROW, pack_inputs
from odezoo.models.macaron.macaron_layers import (
    MacaronEncoderLayer,
    PaddedNormal,
    SinusoidalPositionEmbedding,
    check_model_settings,
    erf_gelu,
    layer_norm,
)
from odezoo.models.macaron.macaron_tasks import MacaronMaskedLM, MacaronTextClassification
from odezoo.models.macaron.macaron_tokenizer import Dictionary, preset_tokenizer
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.text import MASK_TOKEN, check_masked_texts

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")

# docs/papers.md#macaron-bert: `intermediate_dim` is BERT's d_ff, each Macaron FFN has half of it
# (fairseq: 1536).
CONFIGS = {
    "bert_base": {
        "num_layers": 12,
        "hidden_dim": 768,
        "num_heads": 12,
        "intermediate_dim": 3072,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.0,
    },
}


@keras.saving.register_keras_serializable(package="odezoo")
class MacaronBert(PretrainedMixin, keras.Model):
    """BERT encoder whose layers are splitting schemes, with a masked-LM or a classification head.

    `x_0 = Drop(sqrt(E) · Emb(tokens) + P(positions) + S(segments))`: fairseq's sinusoidal positions
    (`SinusoidalPositionEmbedding`; the fork's BERT sets `encoder_learned_pos=False`), numbered from
    `pad_id + 1` over the right-padded tokens, and a `(2, E)` segment table whose row 1 is fairseq's
    padding row, always 0. Then `num_layers` pre-norm `MacaronEncoderLayer`s and a final LayerNorm,
    every LayerNorm without scale and shift (`no_normalize_affine`). `scheme="strang"` (Macaron):

        x = x + 1/2 · Drop(FFN_relu(LN(x)))     # width intermediate_dim / 2
        x = x +       Drop(SelfAttn(LN(x)))
        x = x + 1/2 · Drop(FFN_gelu(LN(x)))     # width intermediate_dim / 2

    (the fork's first FFN is ReLU, its second GELU); `scheme="lie_trotter"` is BERT's layer, attention
    then one GELU FFN of width `intermediate_dim`, factor 1. With these LayerNorms the Macaron model has
    exactly `E` parameters per layer more than BERT (one more FFN output bias).

    Heads on the final `h`: `num_classes=None`, masked-LM logits `LN_affine(GELU(h W + b)) · Embᵀ`
    (fairseq's `mid_layer`, then the tied token embedding) at every position (the fork computes them at
    the masked ones only), `(batch, length, vocabulary_size)`, without the pre-training checkpoint's
    next-sentence `classifier` (E → 1); `num_classes=K`, the layer `head` on the `<cls>` position,
    `h_0 W_c + b_c` `(batch, K)`, zero-initialised (K = 1: regression).
    `from_pretrained(preset, num_classes=K)` keeps the encoder and puts a new head on it. Init as the
    fork: embeddings `~ N(0, 1/E)` with zero padding rows, FFN kernels Kaiming-normal (`ffn_initializer`),
    attention Xavier-uniform, biases 0 (the masked-LM Linear: Keras' Glorot-uniform where PyTorch's
    default is Kaiming-uniform).

    Inputs (keras-hub's names), int32 `(batch, length)`, right-padded: `token_ids` (fairseq's
    dictionary: `<pad>` = 1, `<mask>` = 4, `<cls>` = 5 first), `segment_ids` (the fork's convention:
    1 for the first sentence, 0 for the second) and `padding_mask` (1 at real tokens), at most
    `max_positions` real tokens; `pack_inputs(*encode_examples(...)[:2])` builds them from sentences
    with the preset's tokenizer (`preset_tokenizer()`).

    Args:
        vocabulary_size: size of the dictionary.
        num_layers: encoder layers.
        hidden_dim: E.
        num_heads: attention heads.
        intermediate_dim: BERT's FFN width `d_ff`; each Macaron FFN has `d_ff / 2`.
        scheme: `"strang"` (Macaron) or `"lie_trotter"` (BERT).
        num_classes: `None` for the masked-LM head, else the classifier's outputs.
        dropout: after the embeddings and on every sub-layer's output.
        attention_dropout: on the attention weights.
        activation_dropout: after the FFNs' activation (the fork: 0).
        max_positions: longest input the sinusoid table holds (the fork: 384 pre-training, 256 GLUE).
        pad_id: the padding token (fairseq: 1).

    Example (`CONFIGS["bert_base"]` is the paper's BERT-base):
        >>> model = MacaronBert(vocabulary_size=len(dictionary), num_classes=2, **CONFIGS["bert_base"])

    Reference: https://arxiv.org/abs/1906.02762
    """

    TASK_CLASS = MacaronMaskedLM  # an instance with `num_classes` is a text classifier
    # dropouts act in training only; the sinusoid table of `max_positions` holds no weights
    SAFE_OVERRIDES = PretrainedMixin.SAFE_OVERRIDES | {
        "dropout", "attention_dropout", "activation_dropout", "max_positions"
    }  # fmt: skip
    CITATION = MacaronTransformer.CITATION

    @classmethod
    def task_of(cls, config):
        return cls.TASK_CLASS if config.get("num_classes") is None else MacaronTextClassification

    def __init__(
        self,
        *,
        vocabulary_size,
        num_layers=12,
        hidden_dim=768,
        num_heads=12,
        intermediate_dim=3072,
        scheme="strang",
        num_classes=None,
        dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.0,
        max_positions=384,
        pad_id=1,
        dtype=None,
        **kwargs,
    ):
        vocabulary_size, num_layers, hidden_dim, pad_id = check_model_settings(
            vocabulary_size, num_layers, hidden_dim, pad_id, dropout
        )
        if num_classes is not None:
            num_classes = check_integer("num_classes", num_classes, 1)

        # === Layers ===
        self._build_embeddings(vocabulary_size, hidden_dim, max_positions, pad_id, dropout, dtype)
        self._build_encoder(
            num_layers, num_heads, intermediate_dim, scheme, dropout, attention_dropout, activation_dropout,
            dtype,
        )  # fmt: skip
        self._build_head(hidden_dim, num_classes, dtype)

        # === Functional Model ===
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUT_NAMES}
        x = self._encode(inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"])
        outputs = self._head_outputs(x, num_classes)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.set_config(
            dtype=dtype,
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            scheme=scheme,
            num_classes=num_classes,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation_dropout=activation_dropout,
            max_positions=max_positions,
            pad_id=pad_id,
        )

    def _build_embeddings(self, vocabulary_size, hidden_dim, max_positions, pad_id, dropout, dtype):
        """Creates the token, position and segment embeddings (padding rows zero) and their dropout."""
        embedding_init = PaddedNormal(hidden_dim**-0.5, pad_id)
        self.token_embedding = layers.ReversibleEmbedding(
            vocabulary_size, hidden_dim, embeddings_initializer=embedding_init, name="token_embedding",
            dtype=dtype,
        )  # fmt: skip
        self.position_embedding = SinusoidalPositionEmbedding(
            hidden_dim, max_positions, pad_id, name="position_embedding", dtype=dtype
        )
        self.segment_embedding = layers.Embedding(
            2, hidden_dim, embeddings_initializer=PaddedNormal(hidden_dim**-0.5, SEGMENT_PAD_ROW),
            name="segment_embedding", dtype=dtype,
        )  # fmt: skip
        self.embedding_dropout = layers.Dropout(dropout, name="embedding_dropout", dtype=dtype)

    def _build_encoder(
        self,
        num_layers,
        num_heads,
        intermediate_dim,
        scheme,
        dropout,
        attention_dropout,
        activation_dropout,
        dtype,
    ):
        """Creates the `num_layers` pre-norm `MacaronEncoderLayer`s (the fork's ReLU then GELU FFNs,
        Kaiming-normal kernels, LayerNorms without scale and shift) and the final LayerNorm."""
        self.encoder_layers = [
            MacaronEncoderLayer(
                num_heads,
                intermediate_dim,
                scheme=scheme,
                normalize_before=True,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation_dropout=activation_dropout,
                activation=erf_gelu,
                macaron_activation="relu",
                norm_affine=False,
                ffn_init="kaiming",
                name=f"encoder_layer_{i}",
                dtype=dtype,
            )
            for i in range(num_layers)
        ]
        self.encoder_norm = layer_norm("encoder_norm", affine=False, dtype=dtype)

    def _build_head(self, hidden_dim, num_classes, dtype):
        """Creates the masked-LM head's layers (`num_classes=None`) or the classifier `head`."""
        if num_classes is None:
            self.mlm_dense = layers.Dense(hidden_dim, activation=erf_gelu, name="mlm_dense", dtype=dtype)
            self.mlm_norm = layer_norm("mlm_norm", dtype=dtype)
        else:
            self.head = layers.Dense(
                num_classes, kernel_initializer="zeros", name="head", dtype=dtype
            )  # fairseq's `classifier`, zero-initialised

    def _head_outputs(self, x, num_classes):
        """The head's output on the encoder output `x`: masked-LM logits at every position through the
        tied token embedding, or the classifier's on the `<cls>` position."""
        if num_classes is None:
            return self.token_embedding(self.mlm_norm(self.mlm_dense(x)), reverse=True)
        return self.head(x[:, 0])

    def preset_tokenizer(self):
        """The `MacaronTokenizer` of the preset folder this model was loaded from (its dictionary has
        `<mask>` = 4 and `<cls>` = 5); see `macaron_tokenizer.preset_tokenizer`."""
        return preset_tokenizer(self)

    def fill_mask(self, texts, top_k=5, *, tokenizer=None, batch_size=32):
        """The most likely tokens at each `<mask>` of `texts` (the masked-LM head), with a progress bar on a
        terminal when the texts fill more than one batch.

        Each text is encoded as one sentence, `<cls> text </s>`, its pieces between the `<mask>`s tokenised
        apart (the tokenizer would split `<mask>` itself into subwords) with `MASK_ID` between them. The
        probabilities are the softmax over the whole vocabulary at the masked position; the top tokens are
        chosen among the ordinary ones (fairseq's four specials, `<mask>` and `<cls>` left out).

        Args:
            texts: a list of str, each holding `<mask>` at least once.
            top_k: tokens per mask.
            tokenizer: a `MacaronTokenizer`; `None`: the preset's (`preset_tokenizer()`).
            batch_size: texts per forward pass.

        Returns:
            Per text, per `<mask>` in order, the `top_k` `{"token", "probability"}`, most likely first: the
            dictionary's symbol (Moses' escapes undone; a word's first subword keeps its `@@`).
        """
        if self.num_classes is not None:
            raise OdezooError(
                f"fill_mask needs the masked-LM head; {self.name} is a classifier (num_classes="
                f"{self.num_classes})."
            )
        top_k, batch_size = check_integer("top_k", top_k, 1), check_integer("batch_size", batch_size, 1)
        tokenizer = self.preset_tokenizer() if tokenizer is None else tokenizer
        if len(tokenizer.dictionary) != self.vocabulary_size:
            raise OdezooError(
                f"The tokenizer's dictionary has {len(tokenizer.dictionary)} symbols but this model's "
                f"vocabulary_size is {self.vocabulary_size}: use the tokenizer saved with the model's preset."
            )
        ids = [self._masked_ids(tokenizer, i, text) for i, text in enumerate(check_masked_texts(texts))]
        results, batches = [], [ids[start : start + batch_size] for start in range(0, len(ids), batch_size)]
        for batch in tqdm(
            batches, desc="filling masks", unit="batch", disable=None if len(batches) > 1 else True
        ):
            inputs = pack_inputs(batch, list(map(len, batch)), self.pad_id)
            logits = np.asarray(self(inputs, training=False), "float64")
            for row, token_ids in enumerate(inputs["token_ids"]):
                masked = logits[row, token_ids == MASK_ID]  # (masks, vocabulary)
                probabilities = np.exp(masked - masked.max(-1, keepdims=True))
                probabilities /= probabilities.sum(-1, keepdims=True)
                results.append([_top_tokens(tokenizer, p, top_k) for p in probabilities])
        return results

    def _masked_ids(self, tokenizer, index, text):
        """`<cls> piece <mask> piece ... </s>`: the ids of `text` with its pieces between the `<mask>`s
        tokenised apart; at most `max_positions` of them."""
        encode = tokenizer.dictionary.encode_line
        pieces = [
            encode(tokenizer.tokenize(piece), append_eos=False).tolist() for piece in text.split(MASK_TOKEN)
        ]
        ids = [CLS_ID, *pieces[0]]
        for piece in pieces[1:]:
            ids += [MASK_ID, *piece]
        ids.append(Dictionary.EOS_ID)
        if len(ids) > self.max_positions:
            raise OdezooError(
                f"Text {index} ({text!r:.80}) has {len(ids)} tokens with <cls> and </s>, more than the "
                f"model's max_positions={self.max_positions}: shorten it."
            )
        return ids

    def _encode(self, token_ids, segment_ids, padding_mask):
        """The final LayerNorm's output `(batch, length, E)` (see the class docstring)."""
        x = self.token_embedding(token_ids) * math.sqrt(self.token_embedding.output_dim)
        second_sentence = ops.expand_dims(ops.cast(ops.not_equal(segment_ids, SEGMENT_PAD_ROW), x.dtype), -1)
        x = x + self.position_embedding(padding_mask) + self.segment_embedding(segment_ids) * second_sentence
        x = self.embedding_dropout(x)
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=padding_mask)
        return self.encoder_norm(x)


def _top_tokens(tokenizer, probabilities, k):
    """The `k` most likely ordinary tokens (ids after `<cls>`) of `probabilities` over the vocabulary, as
    `{"token", "probability"}`, most likely first."""
    ordinary = probabilities[CLS_ID + 1 :]
    best = np.argsort(-ordinary, kind="stable")[:k]
    return [
        {
            "token": _symbol_text(tokenizer, tokenizer.dictionary.symbols[CLS_ID + 1 + i]),
            "probability": float(ordinary[i]),
        }
        for i in best
    ]


def _symbol_text(tokenizer, symbol):
    """A dictionary symbol as text: Moses' escapes undone (`&apos;s` -> `'s`), a subword's `@@` kept."""
    stem, mark = (symbol[:-2], "@@") if symbol.endswith("@@") and len(symbol) > 2 else (symbol, "")
    return tokenizer.detokenize(stem) + mark
