"""Text tasks on token ids: translation (a sequence-to-sequence LM: source and target-prefix ids in,
next-token logits out), masked-LM (ids with mask tokens in, logits over the vocabulary out) and text
classification (ids in, class logits out).

Tokenisation stays outside the model (and outside exported graphs, where text ops would need Flex):
a preset ships its vocabulary and BPE codes as assets. The corpora, tokenizers and metrics (BLEU
with `sacrebleu`, GLUE with scikit-learn / SciPy) come with the language families; this module
holds what every text model shares: the input contract, the export check and the card entries.
"""

import numpy as np

from odezoo.errors import OdezooError
from odezoo.tasks.base import Task, metric


def check_token_ids(model, x):
    """Returns `x` (one array, a list in input order, or a dict by input name, as keras-hub's
    `encoder_token_ids` / `encoder_padding_mask` / ...) with every id input `(batch, length)` int32 in
    `[0, model.vocabulary_size)` and every `*padding_mask` input 0/1; else raises saying what fits."""
    names = [t.name for t in model.inputs]
    if isinstance(x, dict):
        missing = sorted(set(names) - set(x))
        if missing:
            raise OdezooError(f"{model.name} takes inputs {names}; missing {missing}.")
        return dict(zip(names, (_check_ids(model, name, x[name]) for name in names)))
    arrays = list(x) if isinstance(x, list | tuple) else [x]
    if len(arrays) != len(names):
        raise OdezooError(
            f"{model.name} takes {len(names)} input(s) ({', '.join(names)}); received {len(arrays)}."
        )
    checked = [_check_ids(model, name, arr) for name, arr in zip(names, arrays)]
    return checked if isinstance(x, list | tuple) else checked[0]


def _check_ids(model, name, arr):
    arr = np.asarray(arr)
    mask = name.endswith("padding_mask")
    if arr.dtype.kind not in ("iub" if mask else "iu"):
        raise OdezooError(
            f"{model.name} input {name!r} takes integer token ids (batch, length); received dtype "
            f"{arr.dtype}. Tokenize the text with the preset's tokenizer first."
        )
    if arr.ndim != 2:
        fix = " Add a batch axis: ids[None]." if arr.ndim == 1 else ""
        raise OdezooError(
            f"{model.name} input {name!r} takes ids of shape (batch, length); received "
            f"{tuple(arr.shape)}.{fix}"
        )
    high = 2 if mask else int(model.vocabulary_size)
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        what = "a 0/1 padding mask" if mask else f"a vocabulary of {high} entries (ids 0..{high - 1})"
        raise OdezooError(
            f"{model.name} input {name!r} holds values in [{arr.min()}, {arr.max()}] but takes {what}: was "
            "the text tokenized with this preset's vocabulary?"
        )
    return arr.astype("int32")


class _TextTask(Task):
    headline_metric = ""

    def check_inputs(self, model, x):
        return check_token_ids(model, x)

    def sample_inputs(self, model, metadata, count=8, length=16):
        """Random ids in `[4, vocabulary_size)` (0..3 are the special tokens) for every input."""
        rng = np.random.default_rng(0)
        ids = [
            np.ones((count, length), "int32")
            if t.name.endswith("padding_mask")
            else rng.integers(4, int(model.vocabulary_size), (count, length)).astype("int32")
            for t in model.inputs
        ]
        return ids if len(ids) > 1 else ids[0]

    def agreement(self, expected, actual, fmt):
        """Max |difference| of the logits and the share of positions whose arg-max token agrees."""
        diff = float(np.max(np.abs(actual - expected)))
        tolerance = {"float16": 0.1, "dynamic": 1.0, "int8": 2.0}.get(fmt, 1e-4)
        top1 = float(np.mean(actual.argmax(-1) == expected.argmax(-1)))
        fields = {"max_abs_diff": diff, "tolerance": tolerance, "top1_agreement": top1}
        if diff <= tolerance and top1 >= 0.95:
            return fields, None
        return (
            fields,
            f"differs from Keras by {diff:.3g} (tolerance {tolerance:g}), top-1 agreement {top1:.0%}",
        )

    def headline(self, metadata):
        m = metric(metadata, self.headline_metric)
        return "—" if m is None else f"{m['value']:.2f} {self.headline_metric} ({m['dataset']} {m['split']})"

    def card_quotes(self, metadata):
        return [f"{metric(metadata, self.headline_metric)['value']:.2f}", *super().card_quotes(metadata)]


class Translation(_TextTask):
    name = "translation"
    pipeline_tag = "translation"
    description = "source and target-prefix token ids -> next-token logits (a sequence-to-sequence LM)"
    headline_metric = "bleu"
    max_decoding_length = (
        200  # fairseq's default --max-len-b: the exported cache's positions (at most max_positions)
    )

    def export_parts(self, model, metadata, quantize=None):
        """The encoder, one cached decoder step and the greedy loop (`MacaronTransformer.decoding_models`),
        each its own float32 artifact, checked on 8 random sources (up to 16 tokens) and a cache holding
        three target tokens."""
        if quantize:
            raise OdezooError(
                f"{model.name} exports its decoding parts in float32 only (received quantize={quantize!r}): "
                "drop --quantize."
            )
        max_length = min(model.max_positions, self.max_decoding_length)
        parts = model.decoding_models(max_length)
        rng = np.random.default_rng(0)
        ids = rng.integers(4, model.vocabulary_size, (8, min(16, model.max_positions))).astype("int32")
        mask, targets = np.ones_like(ids), rng.integers(4, model.vocabulary_size, (8, 4)).astype("int32")
        source = {"encoder_token_ids": ids, "encoder_padding_mask": mask}
        cross_cache = np.asarray(model.cross_attention_cache(model.encode(ids, mask)))
        cache = model.call_decoder_with_cache(
            None, mask, targets[:, :3], model.init_cache(len(ids), max_length), 0, cross_cache
        )[1]
        step = {
            "decoder_token_ids": targets[:, 3:4],
            "index": np.array([3], "int32"),
            "cache": np.asarray(cache),
            "cross_attention_cache": cross_cache,
            "encoder_padding_mask": mask,
        }
        samples = {"encoder": source, "decoder_step": step, "greedy": source}
        return {name: (part, part, samples[name]) for name, part in parts.items()}


class MaskedLM(_TextTask):
    name = "masked_lm"
    pipeline_tag = "fill-mask"
    description = "token ids with mask tokens -> logits over the vocabulary"
    headline_metric = "masked_accuracy"


class TextClassification(_TextTask):
    name = "text_classification"
    pipeline_tag = "text-classification"
    description = "token ids -> class logits (a masked-LM encoder with a new head)"
    headline_metric = "glue_score"
    head_layer = "head"

    def changes_head(self, config, overrides):
        return overrides.get("num_classes", config.get("num_classes")) != config.get("num_classes")
