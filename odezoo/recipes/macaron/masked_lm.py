"""Masked-LM pre-training of a small Macaron-BERT and its BERT baseline (`scheme="lie_trotter"`: the
same code) on offline English text, sized for a 2-core CPU.

Data (`dictionary_en`): the distinct English sides of the Debian German–English dictionary
(`odezoo.data.text.dictionary_english`: 312,993 training strings, 827k words; the held-out text is
`dictionary_splits`' valid side, 3,895 strings; the subject-tag task's valid and test entries are left
out of both). Tokenizer: BPE learned on the training text with the Macaron pipeline
(`MacaronTokenizer.train`: Moses, lowercase, subword-nmt), the BERT dictionary (`<mask>` = 4,
`<cls>` = 5 after fairseq's specials). The strings are packed in file order into sequences of at most
`sequence_length` tokens (`pack_sentences`; dictionary neighbours are related phrases), masked anew
every batch with BERT's rule (`mask_tokens`: 15 %, 80/10/10); the loss and `masked_accuracy` count
the masked positions only. Adam β = (0.9, 0.999), ε = 1e-6, decoupled weight decay, the learning rate
warmed up linearly then decayed linearly to 0 (`WarmupLinearDecay`).

Cost (measured, TF_NUM_INTRAOP_THREADS=1, two runs side by side on the 2-core CPU, defaults): the
text packs into 31,349 sequences, 490 batches of 64 per epoch, ≈ 290 s per epoch for either scheme,
≈ 24 min for the 5 epochs plus ≈ 1 min for the tokenizer. The preset written
(`macaron_bert_small_dictionary_en`, `bert_small_dictionary_en`, both published) holds the tokenizer;
`odezoo eval PRESET` re-scores the held-out text. Fine-tune it on the subject tags with `odezoo train
<preset>_dictionary_tags` (`--set base=FOLDER` for an encoder of your own).
"""

from dataclasses import dataclass, replace

import keras
import numpy as np

from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron_bert import MacaronBert
from odezoo.models.macaron.macaron_bert_inputs import mask_tokens, pack_inputs, pack_sentences
from odezoo.models.macaron.macaron_convert import bert_dictionary
from odezoo.models.macaron.macaron_layers import SCHEMES
from odezoo.models.macaron.macaron_tasks import evaluate_masked_lm, masked_lm_text
from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer
from odezoo.recipes._common import (
    DistributedRunConfig,
    check_choice,
    check_positive,
    eval_command,
    finish_run,
    start_run,
    train_command,
)
from odezoo.recipes.macaron import LabelSmoothedCrossEntropy, bert_adam, check_heads
from odezoo.tasks.text import MASKED_LM_DATASETS
from odezoo.training import checkpointed_epoch, epoch_dataset, fit_resumable, make_strategy


@dataclass(frozen=True, kw_only=True)
class Config(DistributedRunConfig):
    """Every knob of the recipe; `odezoo train RECIPE --set key=value` changes one (`limit`: training and
    held-out strings; `data_dir`: the Ding de-en file, "" for Debian's)."""

    dataset: str = "dictionary_en"
    scheme: str = "strang"  # "strang": Macaron-BERT; "lie_trotter": BERT
    num_layers: int = 2
    hidden_dim: int = 128
    num_heads: int = 4
    intermediate_dim: int = 512  # BERT's d_ff; Macaron has two FFNs of half this width
    dropout: float = 0.1
    attention_dropout: float = 0.1
    bpe_merges: int = 4000
    sequence_length: int = 64  # tokens per packed sequence, <cls> and </s> included
    batch_size: int = 64  # sequences per update
    mask_rate: float = 0.15
    epochs: int = 5
    learning_rate: float = 5e-4  # peak
    warmup_ratio: float = 0.06
    warmup_init_lr: float = 1e-7
    weight_decay: float = 0.01
    seed: int = 1

    def preset_name(self):
        """`macaron_bert_small_dictionary_en` or `bert_small_dictionary_en`; `_seed<k>` when k is not 1."""
        if self.preset:
            return self.preset
        name = "macaron_bert" if self.scheme == "strang" else "bert"
        return f"{name}_small_{self.dataset}" + ("" if self.seed == 1 else f"_seed{self.seed}")

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        check_choice(self, "dataset", MASKED_LM_DATASETS)
        check_choice(self, "scheme", SCHEMES)
        check_positive(self, "num_layers", "hidden_dim", "num_heads", "intermediate_dim", "bpe_merges")
        check_positive(self, "batch_size", "epochs")
        check_positive(self, "sequence_length", minimum=3)
        check_positive(self, "limit", "weight_decay", "warmup_init_lr", "warmup_ratio", minimum=0)
        if not 0 < self.mask_rate < 1 or self.warmup_ratio >= 1:
            raise OdezooError(
                "`mask_rate` must be in (0, 1) and `warmup_ratio` < 1. Received: "
                f"mask_rate={self.mask_rate!r}, warmup_ratio={self.warmup_ratio!r}"
            )
        check_heads(self)


# The Config fields that are MacaronBert's arguments.
ARCHITECTURE = (
    "num_layers", "hidden_dim", "num_heads", "intermediate_dim", "scheme", "dropout", "attention_dropout",
)  # fmt: skip
MACARON_BERT_SMALL = Config()
BERT_SMALL = replace(MACARON_BERT_SMALL, scheme="lie_trotter")
CONFIGS = (MACARON_BERT_SMALL, BERT_SMALL)


def train(config, workdir, *, callbacks=()):
    """Pre-trains, scores the held-out text (`evaluate_masked_lm`) and writes a preset with its tokenizer.

    Returns:
        `{"masked_accuracy", "masked_tokens", "preset_dir"}`.
    """
    data_dir = config.data_dir or None

    def prepare():  # the strategy first: MultiWorkerMirroredStrategy configures the runtime at startup
        strategy = make_strategy(config.strategy, config.tpu)
        return strategy, masked_lm_text(config.dataset, "train", limit=config.limit, data_dir=data_dir)

    workdir, (strategy, texts) = start_run(workdir, config, prepare)
    tokenizer = bert_tokenizer(texts, config.bpe_merges)
    sequences = _packed(tokenizer, texts, config.sequence_length)
    steps = -(-len(sequences) // config.batch_size)
    dataset = _training_dataset(config, tokenizer, sequences, checkpointed_epoch(workdir / "checkpoints"))
    total = steps * config.epochs
    with strategy.scope():
        model = MacaronBert(
            vocabulary_size=len(tokenizer.dictionary),
            max_positions=config.sequence_length,
            name=config.preset_name(),
            **{name: getattr(config, name) for name in ARCHITECTURE},
        )
        model.compile(
            optimizer=bert_adam(config, total),
            loss=LabelSmoothedCrossEntropy(0.0),  # cross-entropy averaged over the masked positions
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],
        )
    checkpoint = fit_resumable(
        model, dataset, epochs=config.epochs, steps_per_epoch=steps, directory=workdir / "checkpoints",
        strategy=strategy, callbacks=callbacks,
    )  # fmt: skip
    result = evaluate_masked_lm(
        model, tokenizer, config.dataset, split="valid", limit=config.limit, data_dir=data_dir,
        rate=config.mask_rate,
    )  # fmt: skip
    command = eval_command(config, config.dataset)
    recipe, _ = train_command(config)
    architecture = "Macaron-BERT (Strang splitting)" if config.scheme == "strang" else "BERT (Lie–Trotter)"
    return finish_run(
        workdir,
        model,
        config,
        summary={key: result[key] for key in ("masked_accuracy", "masked_tokens")},
        history=checkpoint.history,
        metadata={
            "description": f"{architecture}, {config.num_layers} layers, d = {config.hidden_dim}, "
            f"masked-LM on {config.dataset} by recipe `{recipe}`.",
            "dataset": config.dataset,
            "training_strings": len(texts),
            "training_sequences": len(sequences),
            "metrics": [
                {
                    "dataset": config.dataset,
                    "split": "valid",
                    "metric": "masked_accuracy",
                    "value": result["masked_accuracy"],
                    "num_examples": result["num_examples"],
                    "masked_tokens": result["masked_tokens"],
                    "command": command,
                }
            ],
        },
        tokenizer=tokenizer,
    )


def bert_tokenizer(texts, bpe_merges):
    """A `MacaronTokenizer` (English, BPE with `bpe_merges` merges) learned on `texts`, its dictionary
    the BERT one (`<mask>`, `<cls>` after fairseq's specials). `MacaronTokenizer.train` takes
    (source, target) pairs: consecutive strings are paired, so each is counted once."""
    texts = list(texts)
    pairs = list(zip(texts[::2], [*texts[1::2], ""]))
    tokenizer = MacaronTokenizer.train(pairs, num_merges=bpe_merges, source_lang="en", target_lang="en")
    tokenizer.dictionary = bert_dictionary(tokenizer.dictionary)
    return tokenizer


def _packed(tokenizer, texts, length):
    encode = tokenizer.dictionary.encode_line
    return pack_sentences((encode(tokenizer.tokenize(t), append_eos=False) for t in texts), length)


def _training_dataset(config, tokenizer, sequences, first_epoch=0):
    """Batches of `batch_size` packed sequences in a fresh order every epoch, masked anew (the masks
    drawn from the seed, the epoch and the batch's number, so a resumed run draws what it would have)."""
    import tensorflow as tf

    pad_id = tokenizer.dictionary.PAD_ID
    vocabulary_size = len(tokenizer.dictionary)

    def batches_of_epoch(epoch):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(sequences))
        for number, start in enumerate(range(0, len(order), config.batch_size)):
            yield epoch, number, order[start : start + config.batch_size]

    def make_batch(batch):
        epoch, number, rows = batch
        inputs = pack_inputs([sequences[i] for i in rows], [len(sequences[i]) for i in rows], pad_id)
        rng = np.random.default_rng([config.seed, epoch, number, 1])
        inputs["token_ids"], labels, weights = mask_tokens(
            inputs["token_ids"], inputs["padding_mask"], rng, vocabulary_size=vocabulary_size,
            rate=config.mask_rate,
        )  # fmt: skip
        return inputs, labels, weights

    ids = tf.TensorSpec((None, None), tf.int32)
    signature = ({name: ids for name in ("token_ids", "segment_ids", "padding_mask")}, ids,
                 tf.TensorSpec((None, None), tf.float32))  # fmt: skip
    return epoch_dataset(batches_of_epoch, make_batch, signature, first_epoch=first_epoch)
