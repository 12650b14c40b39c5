"""Text tasks on token ids: translation (a sequence-to-sequence LM: source and target-prefix ids in,
next-token logits out), masked-LM (ids with mask tokens in, logits over the vocabulary out) and text
classification (ids in, class logits out).

Tokenisation stays outside the model (and outside exported graphs, where text ops would need Flex):
a preset ships its vocabulary and BPE codes as assets, which the model finds in its `preset_folder`.
The corpora and tokenizers come with the language families; this module holds what every text
model shares: the input contract, the export check, the card entries, and translation's evaluation
(BLEU and chrF with `sacrebleu`) and `predict`.
"""

import numpy as np

from odezoo.errors import OdezooError
from odezoo.tasks.base import Option, Task, data_options, metric

TRANSLATION_DATASETS = ("dictionary", "iwslt14", "wmt14")
MASKED_LM_DATASETS = ("dictionary_en",)


def check_token_ids(model, x):
    """Returns `x` (one array, a list in input order, or a dict by input name, as keras-hub's
    `encoder_token_ids` / `encoder_padding_mask` / ...) with every id input `(batch, length)` int32 in
    `[0, model.vocabulary_size)` and every `*padding_mask` and `segment_ids` input 0/1; else raises
    saying what fits."""
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
    segments = name == "segment_ids"
    high = 2 if mask or segments else int(model.vocabulary_size)
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        vocabulary = f"a vocabulary of {high} entries (ids 0..{high - 1})"
        what = "a 0/1 padding mask" if mask else "0/1 segment ids" if segments else vocabulary
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
        """Random ids in `[4, vocabulary_size)` (0..3 are the special tokens) for every id input, ones
        for the padding masks and segment ids (one sentence)."""
        rng = np.random.default_rng(0)
        ids = [
            np.ones((count, length), "int32")
            if t.name.endswith("padding_mask") or t.name == "segment_ids"
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

    headline_digits = 2

    def format_value(self, value):
        """The headline number as the README table and the card print it."""
        return f"{value:.{self.headline_digits}f}"

    def headline_record(self, metadata):
        """The `metadata["metrics"]` record of the headline: the first named `headline_metric`."""
        return metric(metadata, self.headline_metric)

    def headline(self, metadata):
        m = self.headline_record(metadata)
        if m is None:
            return "—"
        return f"{self.format_value(m['value'])} {m['metric']} ({m['dataset']} {m['split']})"

    def card_quotes(self, metadata):
        return [self.format_value(self.headline_record(metadata)["value"]), *super().card_quotes(metadata)]

    def golden(self, model, stored):
        """Teacher-forced logits of the stored inputs: `stored` holds one array per model input, by
        input name, and the expected `logits`."""
        return model.predict({t.name: stored[t.name] for t in model.inputs}, verbose=0), stored["logits"]


class Translation(_TextTask):
    """Translation models have `translate(sentences, *, tokenizer=None, beam, lenpen, batch_size,
    tokenized)` and `preset_tokenizer()` (the tokenizer in the model's `preset_folder`)."""

    name = "translation"
    pipeline_tag = "translation"
    description = "source and target-prefix token ids -> next-token logits (a sequence-to-sequence LM)"
    headline_metric = "bleu"
    predict_options = (
        Option("beam", "beam size (default 5)", int, minimum=1),
        Option("lenpen", "length penalty exponent of beam search (default 1.0)", float),
    )
    eval_options = (
        *data_options(
            f"data set, one of {', '.join(TRANSLATION_DATASETS)} (default: the preset's)",
            "data split (default: test)",
            "iwslt14: the prepare-iwslt14.sh output folder; wmt14: the TFDS data folder; dictionary: "
            "the Ding de-en file",
        ),
        *predict_options,
    )

    def predict(self, model, metadata, inputs, *, beam=5, lenpen=1.0):
        """`[{"source", "translation"}]` for the sentences `inputs`, with the preset's tokenizer."""
        if not inputs:
            raise OdezooError(
                "Give the sentences to translate as arguments: "
                f'`odezoo predict {metadata.get("preset", "PRESET")} "A sentence." "Another one."`.'
            )
        translations = model.translate(list(inputs), beam=beam, lenpen=lenpen)
        return [{"source": s, "translation": t} for s, t in zip(inputs, translations)]

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

    def spot_checks(self, model, metadata):
        """The held-out examples the recipe recorded (`metadata["examples"]`, as `evaluate_translation`
        returns them) translate as recorded, with the headline BLEU record's beam and lenpen."""
        examples = metadata.get("examples")
        if not examples:
            return [("metadata records translation examples", False)]
        card = metric(metadata, self.headline_metric) or {}
        sources = [e["source"] for e in examples]
        translations = model.translate(sources, beam=card.get("beam", 5), lenpen=card.get("lenpen", 1.0))
        return [
            (f"{e['source']!r} -> {t!r}, recorded {e['translation']!r}", t == e["translation"])
            for e, t in zip(examples, translations)
        ]

    max_decoding_length = 200  # fairseq's default --max-len-b: the exported cache's positions
    unexportable = {
        "onnx": "tf2onnx leaves an XlaDynamicUpdateSlice node (the cache update) that is not ONNX, and "
        "onnxruntime rejects the encoder's head-split Reshape (measured with tf2onnx 1.17)",
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


def translation_scores(hypotheses, references, hypothesis_lines, reference_lines, *, lowercase=False):
    """Corpus scores of translations against one reference each, with `sacrebleu`:

    - `bleu`: sacreBLEU (13a tokenisation, exp smoothing) of the detokenised `hypotheses` against the
      raw `references`, lowercased on both sides when `lowercase` (a lowercasing model's output cannot
      have case); `bleu_signature` records the settings.
    - `tokenized_bleu`: what fairseq's `generate.py --remove-bpe` reports and the paper quotes: BLEU of
      the token lines (Moses-tokenised, lowercased, BPE removed) `hypothesis_lines` against
      `reference_lines`, split on whitespace only (`tokenize="none"`), unsmoothed.
    - `chrf`: chrF2 of `hypotheses` against `references` (lowercased when `lowercase`).
    """
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        raise OdezooError(
            "Translation scores need sacrebleu (the `text` extra): pip install 'odezoo[text]'."
        ) from None

    bleu = BLEU(lowercase=lowercase)
    return {
        "bleu": round(bleu.corpus_score(hypotheses, [references]).score, 4),
        "tokenized_bleu": round(
            BLEU(tokenize="none", smooth_method="none", force=True)  # tokenised on purpose
            .corpus_score(hypothesis_lines, [reference_lines])
            .score,
            4,
        ),
        "chrf": round(CHRF(lowercase=lowercase).corpus_score(hypotheses, [references]).score, 4),
        "bleu_signature": bleu.get_signature().format(),
    }


def translation_pairs(tokenizer, dataset, split="test", *, limit=0, data_dir=None):
    """The pairs of an evaluation set in `tokenizer`'s direction, first `limit` (0: all), as four lists:
    source texts, source token lines (the subwords the dictionary takes), reference texts and reference
    token lines (Moses-tokenised, lowercased, BPE removed).

    `dataset`: `dictionary` (the Debian corpus; `data_dir` a Ding `de-en` file), `iwslt14` (`data_dir`
    the folder `prepare-iwslt14.sh` writes, whose lines are token lines: their texts are detokenised)
    or `wmt14` (TFDS; `data_dir` its data folder).
    """
    from odezoo.data.text import dictionary_corpus, iwslt14_files, join_bpe, wmt14_pairs

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
        "beam": beam,
        "lenpen": lenpen,
        **translation_scores(hypotheses, references, lines, reference_lines, lowercase=tokenizer.lowercase),
        "examples": [
            {"source": s, "reference": r, "translation": h}
            for s, r, h in zip(sources[:5], references, hypotheses)
        ],
    }


class _EncoderTask(_TextTask):
    """Tasks of a BERT encoder (`MacaronBert`): the id checks, sequences within its positions, and export
    samples laid out as the fork's inputs."""

    def sample_inputs(self, model, metadata, count=8, length=16):
        """`count` inputs by name as `encode_examples` and `pack_inputs` lay them out: `<cls>`, one
        sentence (even rows) or two (odd rows, the second with segment id 0), `</s>` after each, random
        ids after the specials; `length` tokens (at most `max_positions`), 3 fewer per row down to 4,
        right-padded."""
        from odezoo.models.macaron.macaron_bert import CLS_ID, pack_inputs
        from odezoo.models.macaron.macaron_tokenizer import Dictionary

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

    def check_inputs(self, model, x):
        x = check_token_ids(model, x)
        names = [t.name for t in model.inputs]
        mask = x["padding_mask"] if isinstance(x, dict) else x[names.index("padding_mask")]
        longest = int(mask.sum(-1).max(initial=0))
        if longest > model.max_positions:
            raise OdezooError(
                f"{model.name} takes at most {model.max_positions} tokens per sequence (max_positions); "
                f"received a sequence of {longest}. Shorten it (encode_examples truncates)."
            )
        return x

    def spot_checks(self, model, metadata):
        """The card's headline number re-measured by `evaluate` on its data set and split, from the file
        the recipe read (the small encoders score a whole held-out split in seconds); it must match to
        1e-4."""
        record = self.headline_record(metadata)
        if record is None:
            return [("metadata records a headline metric", False)]
        data_dir = metadata.get("recipe_config", {}).get("data_dir") or None
        dataset, split = record["dataset"], record["split"]
        result = self.evaluate(model, metadata, dataset=dataset, split=split, data_dir=data_dir)
        value = result[record["metric"]]
        return [
            (
                f"{record['metric']} on {record['dataset']} {record['split']}: {value:.4f}, "
                f"recorded {record['value']:.4f}",
                abs(value - record["value"]) <= 1e-4,
            )
        ]


class MaskedLM(_EncoderTask):
    """`odezoo eval PRESET --dataset dictionary_en` scores held-out English text (`evaluate_masked_lm`)."""

    name = "masked_lm"
    pipeline_tag = "fill-mask"
    description = "token ids with mask tokens -> logits over the vocabulary"
    headline_metric = "masked_accuracy"

    def format_value(self, value):
        return f"{value:.2%}"

    eval_options = data_options(
        f"data set, one of {', '.join(MASKED_LM_DATASETS)} (default: the preset's)",
        "data split (default: valid)",
        "the Ding de-en file",
    )

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
    from odezoo.data.text import dictionary_english

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
    from odezoo.models.macaron.macaron_bert import mask_tokens, pack_inputs, pack_sentences

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
        "masked_tokens": int(total),
        "masked_accuracy": correct / max(total, 1.0),
    }


class TextClassification(_EncoderTask):
    """Sequence classification (and STS-B's regression) on GLUE and the dictionary subject tags:
    `odezoo eval PRESET --dataset glue/<task>` (or `dictionary_tags`) scores a labelled split with the
    task's metrics (`odezoo.data.glue.glue_metrics`). `from_pretrained(preset, num_classes=K)` keeps the
    encoder and puts a new `head` on it."""

    name = "text_classification"
    pipeline_tag = "text-classification"
    description = "token ids -> class logits (a masked-LM encoder with a new head)"
    head_layer = "head"
    eval_options = data_options(
        "data set: glue/<task> or dictionary_tags (default: the preset's)",
        "data split (default: validation; MNLI: validation_matched; dictionary_tags: test)",
    )

    def evaluate(self, model, metadata, *, dataset=None, split=None, limit=0, batch_size=32, data_dir=None):
        """`evaluate_glue` with the preset's tokenizer, on the preset's GLUE task by default."""
        from odezoo.data.glue import glue_task

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

    def predict(self, model, metadata, inputs):
        """`[{"text", "label", "probability"}]` for the examples `inputs` (a pair's two sentences
        separated by a tab), encoded as `evaluate_glue` encodes them, with the preset's tokenizer; the
        labels are named as the preset's data set names them (`GlueTask.label_names`). A regression
        preset (STS-B) gives `[{"text", "score"}]`."""
        from odezoo.data.glue import glue_task

        if not inputs:
            raise OdezooError(
                "Give the texts to classify as arguments: "
                f'`odezoo predict {metadata.get("preset", "PRESET")} "A sentence." "Another one."` (a pair: '
                "its two sentences separated by a tab)."
            )
        task = glue_task(metadata["dataset"]) if metadata.get("dataset") else None
        examples = [tuple(text.split("\t")) for text in inputs]
        if task is not None:
            try:
                examples = task.check_examples(examples)
            except OdezooError as error:
                raise OdezooError(f"{error} Separate a pair's two sentences with a tab.") from None
        logits = classifier_logits(model, model.preset_tokenizer(), examples)[0].astype("float64")
        if task is not None and task.is_regression:
            return [{"text": t, "score": float(s)} for t, s in zip(inputs, logits[:, 0])]
        if logits.shape[-1] == 1:  # one binary logit: p(class 1) = sigmoid
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            probabilities = np.stack([1.0 - p1, p1], axis=-1)
        else:
            shifted = np.exp(logits - logits.max(-1, keepdims=True))
            probabilities = shifted / shifted.sum(-1, keepdims=True)
        names = task.label_names if task is not None and task.label_names else ()
        best = probabilities.argmax(-1)
        return [
            {"text": t, "label": names[c] if names else int(c), "probability": float(p[c])}
            for t, c, p in zip(inputs, best, probabilities)
        ]

    headline_digits = 4  # GLUE's metrics are fractions (accuracy, F1, correlations)

    def headline_record(self, metadata):
        """The first metric the recipe recorded (the task's headline metric on the first split)."""
        return next(iter(metadata.get("metrics", [])), None)


def classifier_logits(model, tokenizer, examples, *, batch_size=32):
    """`(logits (n, outputs), number of examples truncated)` of `examples` (tuples of one or two
    sentences) encoded as the fork does (`macaron_bert.encode_examples`, truncated to the model's
    positions), in batches of similar length."""
    from odezoo.models.macaron.macaron_bert import encode_examples, pack_inputs

    ids, firsts, truncated = encode_examples(tokenizer, examples, model.max_positions)
    order = np.argsort([len(i) for i in ids], kind="stable")  # batches of similar length
    logits = np.zeros((len(ids), int(model.outputs[0].shape[-1])), "float32")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        inputs = pack_inputs([ids[i] for i in rows], [firsts[i] for i in rows], tokenizer.dictionary.PAD_ID)
        logits[rows] = np.asarray(model(inputs, training=False))
    return logits, truncated


def evaluate_glue(model, tokenizer, task, *, split, limit=0, batch_size=32, data_dir=None):
    """Scores `model` on a labelled split of a GLUE task or the dictionary tags (`GlueTask`): its
    examples encoded as the fork does (`macaron_bert.encode_examples`, truncated to the model's
    positions), the outputs read as `glue_metrics` reads them.

    Returns:
        `{"dataset", "split", "num_examples", "truncated"}` and the task's metrics.
    """
    from odezoo.data.glue import glue_examples, glue_metrics

    outputs = int(model.outputs[0].shape[-1])
    fits = outputs == task.num_classes or (outputs == 1 and task.num_classes == 2)  # 2: one binary logit
    if not fits:
        raise OdezooError(
            f"{model.name} has {outputs} outputs but {task.dataset} has {task.num_classes} classes"
            f"{' (1: a regression score)' if task.is_regression else ''}; fine-tune it with "
            f"num_classes={task.num_classes} first."
        )
    examples, labels = glue_examples(task, split, limit=limit, data_dir=data_dir)
    logits, truncated = classifier_logits(
        model, tokenizer, task.check_examples(examples), batch_size=batch_size
    )
    return {
        "dataset": task.dataset,
        "split": split,
        "num_examples": len(examples),
        "truncated": truncated,
        **glue_metrics(task, labels, logits),
    }
