"""Translation recipe for Macaron Net and its Transformer baseline (`scheme="lie_trotter"`: the same
code, one FFN after attention instead of half an FFN on each side).

The paper's setting (docs/papers.md#macaron-translation): shared embeddings, Adam β = (0.9, 0.98),
inverse-square-root schedule with linear warm-up from 1e-7, label-smoothed cross-entropy ε = 0.1, batches of
about `max_tokens` tokens (fairseq's `--max-tokens`), seed 1; IWSLT14 peak rate 1.5e-3 and weight decay 1e-4,
WMT14 base 1.5e-3, big 3e-3. Two differences, both ours: Keras' Adam decays weights decoupled from the
gradient (fairseq 0.6's adds `wd · θ` to it), and the run length, which the authors' scripts do not set
(NOT FOUND), is `epochs`.

`DICTIONARY` is the offline recipe, sized for a 2-core CPU: the Debian German–English dictionary
(`odezoo.data.text.dictionary_splits`), a small model, BPE learned on its training split with the
IWSLT pipeline (`MacaronTokenizer.train`: Moses, lowercase, subword-nmt), so that trained-here and
converted presets use one tokenizer. Its BLEU is not comparable with IWSLT's: the pairs are
dictionary phrases, most of them one to three words long.

`base` fine-tunes a translation preset (a preset name, a preset folder or `hf://org/repo`: a
published, trained or converted `MacaronTransformer` with its tokenizer) on the recipe's pairs: its
weights are the starting point, its tokenizer is kept (the vocabulary is the model's: words of the new
corpus are segmented by its BPE codes, those outside the dictionary become `<unk>`; `bpe_merges` is
unused) and recorded with the preset, `base` in `metadata.json`. The settings the base defines,
`BASE_SETTINGS` (its architecture, and the direction its tokenizer reads), are the base's: `--set base=`
fills those not set from it, and a setting that contradicts the base is refused before anything is
written. Dropout and the schedule are the recipe's. The preset written is `<base>_<dataset>`.

The tokenised corpus is cached (`ODEZOO_CACHE`, default `~/.cache/odezoo`) under a key of its
content and tokenizer settings (with a `base`: its tokenizer's files), so that runs that differ in the
model or seed share it.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from odezoo.data import text
from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron import CONFIGS as ARCHITECTURES
from odezoo.models.macaron.macaron import MacaronTransformer
from odezoo.models.macaron.macaron_layers import SCHEMES
from odezoo.models.macaron.macaron_tasks import evaluate_translation
from odezoo.models.macaron.macaron_tokenizer import TOKENIZER_FILE, Dictionary, MacaronTokenizer
from odezoo.preset_folder import CONFIG_FILE, read_json
from odezoo.presets import resolve
from odezoo.recipes._common import (
    DistributedRunConfig,
    check_choice,
    check_positive,
    eval_command,
    finish_run,
    start_run,
    test_metric,
    train_command,
)
from odezoo.recipes.macaron import LabelSmoothedCrossEntropy, check_heads
from odezoo.training import InverseSquareRoot, checkpointed_epoch, epoch_dataset, fit_resumable, make_strategy

DATASETS = ("dictionary", "iwslt14", "wmt14")
# The settings a `base` preset defines: its architecture (config.json) and its tokenizer's direction.
BASE_SETTINGS = ("scheme", "num_layers", "hidden_dim", "num_heads", "intermediate_dim", "direction")


@dataclass(frozen=True, kw_only=True)
class Config(DistributedRunConfig):
    """Every knob of the recipe; `odezoo train RECIPE --set key=value` changes one (`limit`: training
    pairs and test pairs scored; `data_dir`: for iwslt14 the folder prepare-iwslt14.sh writes, for wmt14
    the TFDS data dir)."""

    dataset: str = "dictionary"
    direction: str = "de-en"
    base: str = ""  # a translation preset to fine-tune (name, folder, hf://org/repo); "": train anew
    scheme: str = "strang"  # "strang": Macaron; "lie_trotter": the Transformer baseline
    num_layers: int = 2
    hidden_dim: int = 128
    num_heads: int = 4
    intermediate_dim: int = 512  # the Transformer's d_ff; Macaron has two FFNs of half this width
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    bpe_merges: int = 4000  # learned on the training split (dictionary, wmt14); iwslt14 brings its codes
    max_tokens: int = 2048  # tokens per batch (the longer side, padded)
    epochs: int = 2
    learning_rate: float = 1.5e-3  # peak
    warmup_updates: int = 500
    warmup_init_lr: float = 1e-7
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    beam: int = 5
    lenpen: float = 1.0
    seed: int = 1

    def preset_name(self):
        """`macaron_dictionary_de_en`, `transformer_dictionary_de_en`, `macaron_iwslt14_de_en`,
        `macaron_wmt14_en_de`, `macaron_big_wmt14_en_de`; with a `base`, `<base>_<dataset>` (base: the
        preset's name or its folder's); `_seed<k>` when k is not 1."""
        if self.preset:
            return self.preset
        if self.base:
            name = f"{Path(self.base.removeprefix('hf://')).name}_{self.dataset}"
        else:
            name = "macaron" if self.scheme == "strang" else "transformer"
            name += "_big" if self.hidden_dim >= 1024 else ""
            name += f"_{self.dataset}_{self.direction.replace('-', '_')}"
        return name + ("" if self.seed == 1 else f"_seed{self.seed}")

    def configure(self, changes, recipe):
        """`RunConfig.configure`; with a `base`, the `BASE_SETTINGS` that `changes` leaves out are the
        base's (those it sets are checked against the base by `validate`)."""
        config = super().configure(changes, recipe)
        if not config.base:
            return config
        defined = base_settings(config.base)
        return replace(config, **{key: value for key, value in defined.items() if key not in changes})

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        check_choice(self, "dataset", DATASETS)
        check_choice(self, "direction", ("de-en", "en-de"))
        check_choice(self, "scheme", SCHEMES)
        check_positive(self, "num_layers", "hidden_dim", "num_heads", "intermediate_dim", "bpe_merges")
        check_positive(self, "max_tokens", "epochs", "warmup_updates", "beam")
        check_positive(self, "limit", "weight_decay", "warmup_init_lr", minimum=0)
        check_heads(self)
        if self.dataset == "iwslt14" and not self.data_dir:
            raise OdezooError(
                "dataset=iwslt14 reads the folder fairseq's prepare-iwslt14.sh writes: pass it with "
                "--set data_dir=PATH/iwslt14.tokenized.de-en."
            )
        if self.base:
            check_base(self)


def base_settings(base):
    """`{setting: value}` of `BASE_SETTINGS` as the translation preset `base` has them (its config.json
    and tokenizer.json); raises where `base` is no `MacaronTransformer` preset with a tokenizer."""
    try:
        folder = resolve(base).folder
    except OdezooError as error:
        raise OdezooError(f"`base` {base!r} is no translation preset: {error}") from None
    saved = read_json(folder / CONFIG_FILE)
    if saved.get("class_name") != MacaronTransformer.__name__:
        raise OdezooError(
            f"`base` {base!r} is a {saved.get('class_name')}; the translation recipe fine-tunes a "
            "MacaronTransformer preset (a translation preset, e.g. macaron_dictionary_de_en, or a folder "
            "`odezoo convert fairseq` wrote)."
        )
    if not (folder / TOKENIZER_FILE).is_file():
        raise OdezooError(
            f"`base` {base!r} holds no {TOKENIZER_FILE}: the fine-tuned preset keeps its base's tokenizer, "
            "so the base must be a preset folder saved with one (as the recipes and the converter write)."
        )
    tokenizer = read_json(folder / TOKENIZER_FILE)
    settings = {key: saved["config"][key] for key in BASE_SETTINGS if key != "direction"}
    return settings | {"direction": f"{tokenizer['source_lang']}-{tokenizer['target_lang']}"}


def check_base(config):
    """Raises, in one line, where a setting of `config` contradicts its `base` (`BASE_SETTINGS`)."""
    contradicting = {k: v for k, v in base_settings(config.base).items() if getattr(config, k) != v}
    if contradicting:
        received = ", ".join(f"{key}={getattr(config, key)!r}" for key in contradicting)
        theirs = ", ".join(f"{key}={value!r}" for key, value in contradicting.items())
        raise OdezooError(
            f"`base` {config.base!r} defines the architecture and direction: it has {theirs}. Received: "
            f"{received} (leave them out: the fine-tuned model keeps its base's)."
        )


def _architecture(name):
    """The recipe's settings of the paper's architecture `ARCHITECTURES[name]` (every one is pre-norm)."""
    return {k: v for k, v in ARCHITECTURES[name].items() if k != "normalize_before"}


def _paper(name, dataset, direction, **training):
    return replace(Config(), dataset=dataset, direction=direction, **_architecture(name), warmup_updates=8000,
                   epochs=50, **training)  # fmt: skip


DICTIONARY = Config()
TRANSFORMER_DICTIONARY = replace(DICTIONARY, scheme="lie_trotter")
IWSLT14 = _paper("iwslt14_small", "iwslt14", "de-en", bpe_merges=10000, max_tokens=4096)
WMT14 = _paper("wmt14_base", "wmt14", "en-de", bpe_merges=32000, max_tokens=8192, weight_decay=0.0, beam=4,
               lenpen=0.6)  # fmt: skip
WMT14_BIG = replace(WMT14, **_architecture("wmt14_big"), learning_rate=3e-3, max_tokens=4096)
CONFIGS = (DICTIONARY, TRANSFORMER_DICTIONARY, IWSLT14, WMT14, WMT14_BIG)


def token_batches(source_lengths, target_lengths, max_tokens):
    """fairseq's batching: pairs ordered by target then source length, cut into batches whose
    `size × longest side` stays within `max_tokens` (a longer pair gets a batch of its own)."""
    order = np.lexsort((source_lengths, target_lengths))
    longest = np.maximum(source_lengths, target_lengths)
    batches, start, width = [], 0, 0
    for end, i in enumerate(order):
        width = max(width, longest[i])
        if end > start and width * (end - start + 1) > max_tokens:
            batches.append(order[start:end])
            start, width = end, longest[i]
    batches.append(order[start:])
    return batches


def batch_arrays(sources, targets, pad_id, eos_id):
    """One batch in the model's inputs: sources left-padded, targets right-padded, the decoder's input
    the target shifted right behind `</s>` (fairseq's `prev_output_tokens`). Returns `(inputs, labels,
    sample weights)`."""
    count = len(sources)
    source_width, target_width = max(map(len, sources)), max(map(len, targets))
    ids = np.full((count, source_width), pad_id, "int32")
    labels = np.full((count, target_width), pad_id, "int32")
    previous = np.full((count, target_width), pad_id, "int32")
    for row, (source, target) in enumerate(zip(sources, targets)):
        ids[row, source_width - len(source) :] = source
        labels[row, : len(target)] = target
        previous[row, : len(target)] = [eos_id, *target[:-1]]
    inputs = {
        "encoder_token_ids": ids,
        "encoder_padding_mask": (ids != pad_id).astype("int32"),
        "decoder_token_ids": previous,
        "decoder_padding_mask": (labels != pad_id).astype("int32"),
    }
    return inputs, labels, (labels != pad_id).astype("float32")


def train(config, workdir, *, callbacks=()):
    """Trains, scores the test split with beam search (`odezoo eval`'s BLEU) and writes a preset with
    its tokenizer.

    Returns:
        `{"bleu", "tokenized_bleu", "chrf", "preset_dir"}`.
    """

    def prepare():  # the strategy first: MultiWorkerMirroredStrategy configures the runtime at startup
        return make_strategy(config.strategy, config.tpu), *prepare_corpus(config)

    workdir, (strategy, tokenizer, sources, targets) = start_run(workdir, config, prepare)
    batches = token_batches(
        np.array(list(map(len, sources))), np.array(list(map(len, targets))), config.max_tokens
    )
    first_epoch = checkpointed_epoch(workdir / "checkpoints")  # a resumed run: the next epoch's order
    dataset = _training_dataset(config, tokenizer, sources, targets, batches, first_epoch)
    with strategy.scope():
        model = _compiled_model(config, tokenizer)
    checkpoint = fit_resumable(
        model,
        dataset,
        epochs=config.epochs,
        steps_per_epoch=len(batches),
        directory=workdir / "checkpoints",
        strategy=strategy,
        callbacks=callbacks,
    )
    result = evaluate_translation(
        model, tokenizer, config.dataset, split="test", beam=config.beam, lenpen=config.lenpen,
        limit=config.limit, data_dir=config.data_dir or None,
    )  # fmt: skip
    command = eval_command(config, config.dataset)
    recipe, _ = train_command(config)
    scores = ("bleu", "tokenized_bleu", "chrf")
    architecture = "Macaron (Strang splitting)" if config.scheme == "strang" else "Transformer (Lie–Trotter)"
    origin = f"{config.base} fine-tuned, " if config.base else ""
    return finish_run(
        workdir,
        model,
        config,
        summary={key: result[key] for key in scores},
        history=checkpoint.history,
        metadata={
            "description": f"{architecture} {config.num_layers}+{config.num_layers} layers, d = "
            f"{config.hidden_dim}, {origin}{config.direction} on {config.dataset} by recipe `{recipe}`.",
            **({"base": config.base} if config.base else {}),
            "dataset": config.dataset,
            "direction": config.direction,
            "training_pairs": len(sources),
            "examples": result["examples"],
            "metrics": [
                test_metric(config, result, key, command, beam=config.beam, lenpen=config.lenpen)
                for key in scores
            ],
        },
        tokenizer=tokenizer,
    )


def _compiled_model(config, tokenizer):
    """The `MacaronTransformer` of `config` for `tokenizer`'s dictionary (with a `base`: the base's, its
    weights loaded), compiled with the paper's Adam, inverse-square-root schedule and label-smoothed loss."""
    dropouts = {
        name: getattr(config, name) for name in ("dropout", "attention_dropout", "activation_dropout")
    }
    if config.base:
        model = MacaronTransformer.from_pretrained(config.base, **dropouts, name=config.preset_name())
    else:
        model = _new_model(config, tokenizer, dropouts)
    model.compile(
        optimizer=keras.optimizers.Adam(
            InverseSquareRoot(config.learning_rate, config.warmup_updates, config.warmup_init_lr),
            beta_1=0.9,
            beta_2=0.98,
            epsilon=1e-8,
            weight_decay=config.weight_decay or None,
        ),
        loss=LabelSmoothedCrossEntropy(config.label_smoothing),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
    )
    return model


def _new_model(config, tokenizer, dropouts):
    """A new `MacaronTransformer` of `config`'s architecture for `tokenizer`'s dictionary."""
    return MacaronTransformer(
        vocabulary_size=len(tokenizer.dictionary),
        num_layers=config.num_layers,
        hidden_dim=config.hidden_dim,
        num_heads=config.num_heads,
        intermediate_dim=config.intermediate_dim,
        scheme=config.scheme,
        **dropouts,
        pad_id=tokenizer.dictionary.PAD_ID,
        name=config.preset_name(),
    )


def _training_dataset(config, tokenizer, sources, targets, batches, first_epoch=0):
    """The batches as a `tf.data.Dataset`, in a fresh random order every epoch (drawn from the seed and
    the epoch's number, from `first_epoch` on)."""
    import tensorflow as tf

    dictionary = tokenizer.dictionary

    def batches_of_epoch(epoch):
        return (batches[b] for b in np.random.default_rng([config.seed, epoch]).permutation(len(batches)))

    def make_batch(rows):
        pairs = [sources[i] for i in rows], [targets[i] for i in rows]
        return batch_arrays(*pairs, dictionary.PAD_ID, dictionary.EOS_ID)

    ids = tf.TensorSpec((None, None), tf.int32)
    names = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")
    signature = ({name: ids for name in names}, ids, tf.TensorSpec((None, None), tf.float32))
    return epoch_dataset(batches_of_epoch, make_batch, signature, first_epoch=first_epoch)


def prepare_corpus(config):
    """`(tokenizer, source id arrays, target id arrays)` of the training split of `config`'s dataset
    and direction, from the cache when it holds them.

    dictionary / wmt14: BPE codes and the joined dictionary learned on the training split
    (`MacaronTokenizer.train` with `bpe_merges`); iwslt14: the files are already tokenised and BPE'd,
    so the dictionary is built on them and the tokenizer takes the folder's `code` file. With a `base`:
    the base's tokenizer, whatever the dataset."""
    pairs = _training_pairs(config)
    tokens, identity = f"bpe{config.bpe_merges}", config.bpe_merges
    if config.base:
        tokens, identity = "base", _base_tokenizer_digest(config.base)
    key = hashlib.sha256(json.dumps([config.dataset, config.direction, identity, pairs]).encode())
    folder = Path(os.environ.get("ODEZOO_CACHE", Path.home() / ".cache" / "odezoo")) / "translation"
    folder /= f"{config.dataset}-{config.direction}-{tokens}-{key.hexdigest()[:16]}"
    if not (folder / "ids.npz").is_file():
        tokenizer = _tokenizer(config, pairs)
        encode = tokenizer.dictionary.encode_line if config.dataset == "iwslt14" else tokenizer.to_ids
        arrays = {}
        for side, texts in zip(("source", "target"), zip(*pairs)):
            ids = [encode(text) for text in texts]
            arrays[side], arrays[f"{side}_lengths"] = np.concatenate(ids), list(map(len, ids))
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
        tokenizer.save(staging)
        np.savez(staging / "ids.npz", **arrays)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    with np.load(folder / "ids.npz") as stored:
        sources, targets = (
            np.split(stored[side], np.cumsum(stored[f"{side}_lengths"])[:-1]) for side in ("source", "target")
        )
    return MacaronTokenizer.load(folder), sources, targets


def _training_pairs(config):
    """The training split's `(source, target)` pairs (the first `limit`, if set)."""
    if config.dataset == "dictionary":
        pairs = text.dictionary_corpus("train", direction=config.direction)
    elif config.dataset == "iwslt14":
        pairs = text.iwslt14_files(config.data_dir, "train", *config.direction.split("-"))
    else:
        pairs = text.wmt14_pairs("train", direction=config.direction, data_dir=config.data_dir or None)
    return pairs[: config.limit or None]


def _base_tokenizer_digest(base):
    """The sha256 of the tokenizer files of the preset `base` (the corpus cache's key)."""
    folder = resolve(base).folder
    settings = read_json(folder / TOKENIZER_FILE)
    digest = hashlib.sha256()
    for name in (TOKENIZER_FILE, settings["dictionary"], settings.get("bpe_codes")):
        if name:
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def _tokenizer(config, train_pairs):
    if config.base:
        return MacaronTokenizer.load(resolve(config.base).folder)
    src, tgt = config.direction.split("-")
    if config.dataset != "iwslt14":
        return MacaronTokenizer.train(
            train_pairs, num_merges=config.bpe_merges, source_lang=src, target_lang=tgt
        )
    codes = Path(config.data_dir) / "code"
    if not codes.is_file():
        raise OdezooError(
            f"{codes} is missing: prepare-iwslt14.sh writes its BPE codes there; the preset's tokenizer "
            "needs them to read new sentences."
        )
    dictionary = Dictionary.build([line for pair in train_pairs for line in pair])
    return MacaronTokenizer(dictionary, codes.read_text(encoding="utf-8"), source_lang=src, target_lang=tgt)
