"""Text tasks on token ids: translation (a sequence-to-sequence LM: source and target-prefix ids in,
next-token logits out), masked-LM (ids with mask tokens in, logits over the vocabulary out) and text
classification (ids in, class logits out).

Tokenisation stays outside the model (and outside exported graphs, where text ops would need Flex):
a preset ships its vocabulary and BPE codes as assets, which the model finds in its `preset_folder`.
The corpora come from `odezoo.data`, the tokenizers and the evaluations on them with the families
(their subclasses of these tasks); this module holds what every text model shares: the input
contract, the export check, the card entries, translation's scores (BLEU and chrF with `sacrebleu`)
and `predict`.
"""

import numpy as np

from odezoo.data.glue import glue_task
from odezoo.errors import OdezooError
from odezoo.tasks.base import Option, Task, data_options, metric, share_agreeing

TRANSLATION_DATASETS = ("dictionary", "iwslt14", "wmt14")
MASKED_LM_DATASETS = ("dictionary_en",)
MASK_TOKEN = "<mask>"  # marks each token a masked LM's `fill_mask` is to fill in a text
FILL_MASK_EXAMPLE = f"the {MASK_TOKEN} was given an injection"
# Least top-1 agreement with Keras of a quantised export's logits, per quantisation (the measured
# agreement of each published preset is in export/MANIFEST.json).
QUANTIZED_TOP1 = {"float16": 0.98, "dynamic": 0.9, "int8": 0.8}


def check_masked_texts(texts):
    """`texts` as a list of str each holding `MASK_TOKEN` at least once, else raises saying what fits."""
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise OdezooError(
            f"fill_mask takes a non-empty list of texts (str) holding {MASK_TOKEN}. Received: {texts!r:.200}"
            f"{' (wrap one text in a list)' if isinstance(texts, str) else ''}"
        )
    for i, text in enumerate(texts):
        if MASK_TOKEN not in text:
            raise OdezooError(
                f"Text {i} ({text!r:.80}) holds no {MASK_TOKEN}: add one where a word is to be filled in, "
                f'e.g. "{FILL_MASK_EXAMPLE}".'
            )
    return list(texts)


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
        for the padding masks and segment ids (one sentence): one array, or a dict by input name (what
        `fit`, `predict` and the export check take) where the model has several inputs."""
        rng = np.random.default_rng(0)
        ids = {
            t.name: np.ones((count, length), "int32")
            if t.name.endswith("padding_mask") or t.name == "segment_ids"
            else rng.integers(4, int(model.vocabulary_size), (count, length)).astype("int32")
            for t in model.inputs
        }
        return ids if len(ids) > 1 else next(iter(ids.values()))

    def agreement(self, expected, actual, fmt):
        """Max |difference| of the logits and the share of positions whose arg-max token agrees."""
        diff = float(np.max(np.abs(actual - expected)))
        tolerance = 1e-4  # float exports; quantised ones: `quantized_agreement`
        top1 = float(np.mean(actual.argmax(-1) == expected.argmax(-1)))
        fields = {"max_abs_diff": diff, "tolerance": tolerance, "top1_agreement": top1}
        if diff <= tolerance and top1 >= 0.95:
            return fields, None
        return (
            fields,
            f"differs from Keras by {diff:.3g} (tolerance {tolerance:g}), top-1 agreement {top1:.0%}",
        )

    def quantized_agreement(self, expected, actual, quantize, *, part="model", output=0):
        """Top-1 agreement of the logits (the share of positions whose arg-max token agrees with Keras'),
        at least `QUANTIZED_TOP1[quantize]`; the max |difference| is reported beside it."""
        fields, problem = share_agreeing(expected, actual, QUANTIZED_TOP1[quantize], "top1_agreement")
        return {**fields, "max_abs_diff": float(np.max(np.abs(actual - expected)))}, problem

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
    """Sequence-to-sequence translation. The model's interface: `translate(sentences, *, tokenizer=None,
    beam, lenpen, batch_size, tokenized)`, `preset_tokenizer()` (the tokenizer in its `preset_folder`),
    `vocabulary_size`. A family's subclass implements `evaluate` on the translation data sets."""

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
        from sacrebleu.metrics import BLEU, CHRF  # optional: the `text` extra
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


class _EncoderTask(_TextTask):
    """Tasks of a BERT encoder: the id checks, sequences within its positions (`max_positions`), and the
    spot check that re-measures the card's headline."""

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
    """Masked language modelling: `odezoo eval PRESET --dataset dictionary_en` scores held-out English
    text by masked-token accuracy (the family's subclass implements `evaluate` and `sample_inputs`);
    `odezoo predict PRESET "the <mask> was ..."` fills the masks. The model's interface:
    `fill_mask(texts, top_k)` (per text, per `MASK_TOKEN`, the `top_k` `{"token", "probability"}`,
    most likely first, special tokens left out), `preset_tokenizer()`, `vocabulary_size`,
    `max_positions`."""

    name = "masked_lm"
    pipeline_tag = "fill-mask"
    description = "token ids with mask tokens -> logits over the vocabulary"
    headline_metric = "masked_accuracy"

    def format_value(self, value):
        return f"{value:.2%}"

    predict_options = (Option("top_k", f"tokens shown per {MASK_TOKEN} (default 5)", int, minimum=1),)
    eval_options = data_options(
        f"data set, one of {', '.join(MASKED_LM_DATASETS)} (default: the preset's)",
        "data split (default: valid)",
        "the Ding de-en file",
    )

    def predict(self, model, metadata, inputs, *, top_k=5):
        """`[{"text", "masks"}]` for the texts `inputs`: per `MASK_TOKEN` of a text, in order, its `top_k`
        most likely tokens `{"token", "probability"}` (`model.fill_mask`, with the preset's tokenizer)."""
        if not inputs:
            raise OdezooError(
                f"Give texts holding {MASK_TOKEN} as arguments: "
                f'`odezoo predict {metadata.get("preset", "PRESET")} "{FILL_MASK_EXAMPLE}"`.'
            )
        filled = model.fill_mask(check_masked_texts(inputs), top_k=top_k)
        return [{"text": text, "masks": masks} for text, masks in zip(inputs, filled)]


class TextClassification(_EncoderTask):
    """Sequence classification (and STS-B's regression) on GLUE and the dictionary subject tags:
    `odezoo eval PRESET --dataset glue/<task>` (or `dictionary_tags`) scores a labelled split with the
    task's metrics (`odezoo.data.glue.glue_metrics`). `from_pretrained(preset, num_classes=K)` keeps the
    encoder and puts a new `head` on it. A family's subclass implements `evaluate`, `sample_inputs` and
    `example_logits` (its encoding of the examples)."""

    name = "text_classification"
    pipeline_tag = "text-classification"
    description = "token ids -> class logits (a masked-LM encoder with a new head)"
    head_layer = "head"
    eval_options = data_options(
        "data set: glue/<task> or dictionary_tags (default: the preset's)",
        "data split (default: validation; MNLI: validation_matched; dictionary_tags: test)",
    )

    def predict(self, model, metadata, inputs):
        """`[{"text", "label", "probability"}]` for the examples `inputs` (a pair's two sentences
        separated by a tab), scored by `example_logits` with the preset's tokenizer; the
        labels are named as the preset's data set names them (`GlueTask.label_names`). A regression
        preset (STS-B) gives `[{"text", "score"}]`."""
        if not inputs:
            raise OdezooError(
                "Give the texts to classify as arguments: "
                f'`odezoo predict {metadata.get("preset", "PRESET")} "A sentence." "Another one."` (a pair: '
                "its two sentences separated by a tab)."
            )
        task = glue_task(metadata["dataset"]) if metadata.get("dataset") else None
        examples = [tuple(text.split("\t")) for text in inputs]
        for index, (text, example) in enumerate(zip(inputs, examples)):
            if not all(sentence.strip() for sentence in example):
                raise OdezooError(
                    f"Input {index} ({text!r:.80}) has an empty sentence: give text to classify (a pair: two "
                    "sentences separated by a tab)."
                )
        if task is not None:
            try:
                examples = task.check_examples(examples)
            except OdezooError as error:
                fix = (
                    "Separate a pair's two sentences with a tab."
                    if len(task.keys) == 2
                    else "A tab separates the two sentences of a pair: replace it by a space."
                )
                raise OdezooError(f"{error} {fix}") from None
        logits = self.example_logits(model, examples).astype("float64")
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

    def example_logits(self, model, examples):
        """The model's outputs `(n, outputs)` for `examples` (tuples of one or two sentences), encoded with
        the preset's tokenizer."""
        raise NotImplementedError(f"{type(self).__name__} does not encode text examples")

    headline_digits = 4  # GLUE's metrics are fractions (accuracy, F1, correlations)

    def headline_record(self, metadata):
        """The first metric the recipe recorded (the task's headline metric on the first split)."""
        return next(iter(metadata.get("metrics", [])), None)
