"""Macaron Net's tasks: the translation, masked-LM and text-classification tasks of `odezoo.tasks.text`
with what is the family's own: the evaluation data (translation pairs, masked-LM text, GLUE examples)
encoded with the preset's tokenizer, the BERT fork's input layout for export samples, and the
translation model's cached-decoding export parts."""

import numpy as np
from tqdm.auto import tqdm

from odezoo.data.glue import glue_examples, glue_metrics, glue_task
from odezoo.data.text import dictionary_corpus, dictionary_english, iwslt14_files, join_bpe, wmt14_pairs
from odezoo.errors import OdezooError, warn
from odezoo.models.macaron.macaron_bert_inputs import (
    CLS_ID,
    encode_examples,
    mask_tokens,
    pack_inputs,
    pack_sentences,
)
from odezoo.models.macaron.macaron_tokenizer import Dictionary
from odezoo.tasks.base import limit_note, relative_error, share_agreeing
from odezoo.tasks.text import (
    MASKED_LM_DATASETS,
    QUANTIZED_TOP1,
    TRANSLATION_DATASETS,
    MaskedLM,
    TextClassification,
    Translation,
    translation_scores,
)

# Largest relative error of a quantised export's attention caches, per quantisation.
QUANTIZED_CACHE_ERROR = {"float16": 1e-2, "dynamic": 0.1, "int8": 0.2}


class MacaronTranslation(Translation):
    """`MacaronTransformer`'s task: evaluated with its preset tokenizer, exported as its cached-decoding
    parts."""

    def evaluate(
        self, model, metadata, *, dataset=None, split="test", beam=5, lenpen=1.0, limit=0, batch_size=64,
        data_dir=None,
    ):  # fmt: skip
        """`evaluate_translation` with the preset's tokenizer, on the preset's data set by default."""
        dataset = dataset or metadata.get("dataset")
        if not dataset:
            raise OdezooError(f"{model.name} does not record its data set; pass --dataset.")
        return evaluate_translation(
            model, model.preset_tokenizer(), dataset, split=split, beam=beam, lenpen=lenpen, limit=limit,
            batch_size=batch_size, data_dir=data_dir,
        )  # fmt: skip

    max_decoding_length = 200  # fairseq's default --max-len-b: the exported cache's positions
    unexportable = {
        "onnx": "tf2onnx leaves an XlaDynamicUpdateSlice node (the cache update) that is not ONNX, and "
        "onnxruntime rejects the encoder's head-split Reshape (measured with tf2onnx 1.17)",
        "tflite+int8": "LiteRT cannot run the int8 encoder (its STRIDED_SLICE takes 1-D to 5-D arrays only; "
        "measured on macaron_dictionary_de_en); use --quantize dynamic or float16",
    }

    def export_parts(self, model, metadata, quantize=None):
        """The encoder, one cached decoder step and the greedy loop (`MacaronTransformer.decoding_models`),
        each its own float32 SavedModel (see `unexportable`), checked on 8 random sources (up to 16
        tokens) and a cache holding three target tokens."""
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

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """The decoder step's logits: top-1 agreement (the task's); the greedy loop's tokens: the share
        equal to Keras' (`QUANTIZED_TOP1`); the attention caches (the encoder's output, the step's
        updated cache): relative error (`QUANTIZED_CACHE_ERROR`)."""
        if part == "greedy":
            return share_agreeing(expected, actual, QUANTIZED_TOP1[quantize], "token_agreement")
        if part == "decoder_step" and output == 0:
            return super().quantized_agreement(expected, actual, quantize, part=part, output=output)
        return relative_error(expected, actual, QUANTIZED_CACHE_ERROR[quantize])


def translation_pairs(tokenizer, dataset, split="test", *, limit=0, data_dir=None):
    """The pairs of an evaluation set in `tokenizer`'s direction, first `limit` (0: all), as four lists:
    source texts, source token lines (the subwords the dictionary takes), reference texts and reference
    token lines (Moses-tokenised, lowercased, BPE removed).

    `dataset`: `dictionary` (the Debian corpus; `data_dir` a Ding `de-en` file), `iwslt14` (`data_dir`
    the folder `prepare-iwslt14.sh` writes, whose lines are token lines: their texts are detokenised)
    or `wmt14` (TFDS; `data_dir` its data folder).
    """
    src, tgt = tokenizer.source_lang, tokenizer.target_lang
    stop = limit or None
    if dataset not in TRANSLATION_DATASETS:
        raise OdezooError(
            f"Unknown translation data set {dataset!r} (--dataset); odezoo has "
            f"{', '.join(TRANSLATION_DATASETS)}."
        )
    tokenized = None  # (source, target) token lines, where the data set holds them
    if dataset == "iwslt14":
        if data_dir is None:
            raise OdezooError(
                "--dataset iwslt14 needs --data-dir (data_dir=): the folder prepare-iwslt14.sh writes."
            )
        tokenized = iwslt14_files(data_dir, split, src, tgt)[:stop]
        pairs = [(tokenizer.detokenize(s, src), tokenizer.detokenize(t)) for s, t in tokenized]
    elif dataset == "dictionary":
        pairs = dictionary_corpus(split, path=data_dir, direction=f"{src}-{tgt}")[:stop]
    else:
        pairs = wmt14_pairs(split, direction=f"{src}-{tgt}", data_dir=data_dir, limit=limit)
    if not pairs:
        raise OdezooError(
            f"The {dataset} {split} split holds no sentence pairs: check the data (--data-dir)."
        )
    tokenized = tokenized or [(tokenizer.tokenize(s), tokenizer.tokenize(t, tgt)) for s, t in pairs]
    return (
        [s for s, _ in pairs],
        [s for s, _ in tokenized],
        [t for _, t in pairs],
        [join_bpe(t) for _, t in tokenized],
    )


def evaluate_translation(
    model, tokenizer, dataset, *, split="test", beam=5, lenpen=1.0, limit=0, batch_size=64, data_dir=None
):
    """Translates an evaluation set (`translation_pairs`) with `model.translate` and scores it
    (`translation_scores`: `bleu`, `tokenized_bleu`, `chrf`).

    Returns:
        A JSON-ready dict: the scores, `bleu_signature`, `num_examples`, `dataset`, `split`, `beam`,
        `lenpen`, and `examples`: the first 5 `{"source", "reference", "translation"}` (what a preset's
        spot check translates again).
    """
    sources, source_lines, references, reference_lines = translation_pairs(
        tokenizer, dataset, split, limit=limit, data_dir=data_dir
    )
    lines = model.translate(
        source_lines, tokenizer=tokenizer, beam=beam, lenpen=lenpen, batch_size=batch_size, tokenized=True
    )
    hypotheses = [tokenizer.detokenize(line) for line in lines]
    return {
        "dataset": dataset,
        "split": split,
        "num_examples": len(sources),
        **limit_note(limit, len(sources)),
        "beam": beam,
        "lenpen": lenpen,
        **translation_scores(hypotheses, references, lines, reference_lines, lowercase=tokenizer.lowercase),
        "examples": [
            {"source": s, "reference": r, "translation": h}
            for s, r, h in zip(sources[:5], references, hypotheses)
        ],
    }


class _BertSamples:
    """Export samples of a `MacaronBert` encoder, laid out as the fork's inputs."""

    def sample_inputs(self, model, metadata, count=8, length=16):
        """`count` inputs by name as `encode_examples` and `pack_inputs` lay them out: `<cls>`, one
        sentence (even rows) or two (odd rows, the second with segment id 0), `</s>` after each, random
        ids after the specials; `length` tokens (at most `max_positions`), 3 fewer per row down to 4,
        right-padded."""
        rng = np.random.default_rng(0)
        longest = min(length, model.max_positions)
        ids, firsts = [], []
        for row in range(count):
            size = max(longest - 3 * (row % 4), 4)  # <cls>, the words and one </s> per sentence
            low = min(CLS_ID + 1, model.vocabulary_size - 1)
            words = rng.integers(low, model.vocabulary_size, size - 2 - row % 2).tolist()
            first = words[: len(words) // 2] if row % 2 else words
            sequence = [CLS_ID, *first, Dictionary.EOS_ID]
            firsts.append(len(sequence))
            if row % 2:
                sequence += [*words[len(first) :], Dictionary.EOS_ID]
            ids.append(sequence)
        return pack_inputs(ids, firsts, model.pad_id)


class MacaronMaskedLM(_BertSamples, MaskedLM):
    """`MacaronBert`'s masked-LM task: `evaluate_masked_lm` with the preset's tokenizer."""

    unexportable = {
        "tflite+int8": "int8 keeps the arg-max token of only 63.3 % of the positions of "
        "macaron_bert_small_dictionary_en's export sample (80 % needed); use --quantize dynamic or float16",
    }

    def evaluate(
        self, model, metadata, *, dataset=None, split="valid", limit=0, batch_size=32, data_dir=None
    ):
        """`evaluate_masked_lm` with the preset's tokenizer, on the preset's text by default."""
        return evaluate_masked_lm(
            model, model.preset_tokenizer(), dataset or metadata.get("dataset", MASKED_LM_DATASETS[0]),
            split=split, limit=limit, batch_size=batch_size, data_dir=data_dir,
        )  # fmt: skip


def masked_lm_text(dataset, split, *, limit=0, data_dir=None):
    """The first `limit` (0: all) strings of a masked-LM text split (`dictionary_en`:
    `odezoo.data.text.dictionary_english`, splits train and valid; `data_dir` a Ding de-en file)."""
    if dataset not in MASKED_LM_DATASETS:
        raise OdezooError(
            f"Unknown masked-LM data set {dataset!r} (--dataset); odezoo has {', '.join(MASKED_LM_DATASETS)}."
        )
    text = dictionary_english(data_dir)
    if split not in text:
        raise OdezooError(f"{dataset} has splits {sorted(text)}. Received: split={split!r}")
    return text[split][: limit or None]


def masked_lm_batches(model, tokenizer, texts, *, batch_size=32, seed=0, rate=0.15):
    """Yields `(inputs, labels, weights)` per batch of `texts` as `evaluate_masked_lm` scores them: packed
    as the pre-training packs them (`pack_sentences`, `model.max_positions` tokens), masked once with
    BERT's rule (`mask_tokens`, a generator seeded with `seed`)."""
    ids = [tokenizer.dictionary.encode_line(tokenizer.tokenize(t), append_eos=False) for t in texts]
    sequences = pack_sentences(ids, model.max_positions)
    rng = np.random.default_rng(seed)
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        inputs = pack_inputs(batch, list(map(len, batch)), tokenizer.dictionary.PAD_ID)
        inputs["token_ids"], labels, weights = mask_tokens(
            inputs["token_ids"], inputs["padding_mask"], rng, vocabulary_size=model.vocabulary_size, rate=rate
        )
        yield inputs, labels, weights


def evaluate_masked_lm(
    model, tokenizer, dataset, *, split="valid", limit=0, batch_size=32, data_dir=None, seed=0, rate=0.15
):
    """Masked-token accuracy on a text split: the strings packed as the pre-training packs them
    (`pack_sentences`, `model.max_positions` tokens), masked once with BERT's rule (`mask_tokens`,
    `seed`), the arg-max of the logits compared with the original token at the masked positions only.

    Returns:
        `{"dataset", "split", "num_examples" (strings), "masked_tokens", "masked_accuracy"}`.
    """
    texts = masked_lm_text(dataset, split, limit=limit, data_dir=data_dir)
    correct = total = 0.0
    for inputs, labels, weights in masked_lm_batches(
        model, tokenizer, texts, batch_size=batch_size, seed=seed, rate=rate
    ):
        predictions = np.asarray(model(inputs, training=False)).argmax(-1)
        correct += float(((predictions == labels) * weights).sum())
        total += float(weights.sum())
    return {
        "dataset": dataset,
        "split": split,
        "num_examples": len(texts),
        **limit_note(limit, len(texts)),
        "masked_tokens": int(total),
        "masked_accuracy": correct / max(total, 1.0),
    }


class MacaronTextClassification(_BertSamples, TextClassification):
    """`MacaronBert` with a classification head: `evaluate_glue` and `classifier_logits` with the
    preset's tokenizer."""

    unexportable = {
        "tflite+int8": "int8 keeps the predicted class of only 37.5 % of "
        "bert_small_dictionary_en_dictionary_tags' export sample (80 % needed); "
        "use --quantize dynamic or float16",
    }

    def evaluate(self, model, metadata, *, dataset=None, split=None, limit=0, batch_size=32, data_dir=None):
        """`evaluate_glue` with the preset's tokenizer, on the preset's GLUE task by default."""
        dataset = dataset or metadata.get("dataset")
        if not dataset:
            raise OdezooError(
                f"{model.name} does not record its data set; pass --dataset glue/<task> or dictionary_tags."
            )
        task = glue_task(dataset)
        return evaluate_glue(
            model, model.preset_tokenizer(), task, split=split or task.validation[0], limit=limit,
            batch_size=batch_size, data_dir=data_dir,
        )  # fmt: skip

    def example_logits(self, model, examples):
        """`classifier_logits` with the preset's tokenizer; an `OdezooWarning` per example truncated to
        the model's `max_positions`, with its length."""
        logits, lengths = classifier_logits(model, model.preset_tokenizer(), examples)
        for index, length in enumerate(lengths):
            if length > model.max_positions:
                warn(
                    f"Input {index} has {length} tokens; {model.name} reads at most {model.max_positions} "
                    f"(max_positions): the last {length - model.max_positions} were left out."
                )
        return logits


def classifier_logits(model, tokenizer, examples, *, batch_size=32):
    """`(logits (n, outputs), each example's length in tokens before truncation)` of `examples` (tuples
    of one or two sentences) encoded as the fork does (`encode_examples`, truncated to the model's
    positions), in batches of similar length, with a progress bar on a terminal when they fill more than
    one."""
    ids, firsts, lengths = encode_examples(tokenizer, examples, model.max_positions)
    order = np.argsort([len(i) for i in ids], kind="stable")  # batches of similar length
    logits = np.zeros((len(ids), int(model.outputs[0].shape[-1])), "float32")
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="classifying", unit="batch", disable=None if len(starts) > 1 else True):
        rows = order[start : start + batch_size]
        inputs = pack_inputs([ids[i] for i in rows], [firsts[i] for i in rows], tokenizer.dictionary.PAD_ID)
        logits[rows] = np.asarray(model(inputs, training=False))
    return logits, lengths


def evaluate_glue(model, tokenizer, task, *, split, limit=0, batch_size=32, data_dir=None):
    """Scores `model` on a labelled split of a GLUE task or the dictionary tags (`GlueTask`): its
    examples encoded as the fork does (`encode_examples`, truncated to the model's
    positions), the outputs read as `glue_metrics` reads them.

    Returns:
        `{"dataset", "split", "num_examples", "truncated"}` and the task's metrics.
    """
    outputs = int(model.outputs[0].shape[-1])
    fits = outputs == task.num_classes or (outputs == 1 and task.num_classes == 2)  # 2: one binary logit
    if not fits:
        raise OdezooError(
            f"{model.name} has {outputs} outputs but {task.dataset} has {task.num_classes} classes"
            f"{' (1: a regression score)' if task.is_regression else ''}; fine-tune it with "
            f"num_classes={task.num_classes} first."
        )
    examples, labels = glue_examples(task, split, limit=limit, data_dir=data_dir)
    logits, lengths = classifier_logits(
        model, tokenizer, task.check_examples(examples), batch_size=batch_size
    )
    return {
        "dataset": task.dataset,
        "split": split,
        "num_examples": len(examples),
        **limit_note(limit, len(examples)),
        "truncated": sum(length > model.max_positions for length in lengths),
        **glue_metrics(task, labels, logits),
    }
