"""GLUE fine-tuning of a Macaron-BERT (or BERT: `scheme="lie_trotter"`) preset, as the authors' fork
does it (docs/papers.md#macaron-glue, `test-our-best-setting.sh`).

The fork's setting: Adam β = (0.9, 0.999), ε = 1e-6; the learning rate rises linearly from 1e-7 over
the first 10 % of the updates, then falls linearly to 0 (`WarmupLinearDecay`); batches of `batch_size`
sentences (pairs) on one GPU. Per task (the table at docs/papers.md#macaron-glue, quoted as it stands):

| task | epochs | batch | lr | wd | loss |
|---|---|---|---|---|---|
| CoLA | 5 | 32 | 3e-5 | 0 | binary |
| MRPC | 4 | 16 | 5e-5 | 0 | binary, symmetric |
| STS-B | 5 | 16 | 5e-5 | 0 | MSE, symmetric |
| RTE | 4 | 16 | 5e-5 | 0 | CE |
| SST-2 | 3 | 24 | 5e-5 | 0 | CE |
| MNLI | 3 | 24 | 5e-5 | 0 | CE |
| MNLI-mm | 3 | 16 | 5e-5 | 0 | CE |
| QQP | 5 | 16 | 5e-5 | 0 | binary, symmetric |
| QNLI | 4 | 16 | 3e-5 | 0.01 | CE |

Ours where the table is silent (NOT FOUND there): WNLI, absent from the table, takes RTE's row (the
same two-sentence entailment format, similarly small); "binary" is read as one logit with sigmoid
cross-entropy, "symmetric" as training on both orders of every pair (the fork's exact use of the flag
is NOT FOUND); MNLI-mm is its own recipe (`validation="validation_mismatched"`, reported first);
longer examples lose tokens from their longer sentence (`macaron_bert_inputs.encode_examples`). Keras' Adam
decays weights decoupled from the gradient (fairseq's adds `wd · θ` to it). The sequence limit is the
fork's GLUE `max_positions`, 256.

`base` names the pre-trained encoder: a preset name, a preset folder or `hf://org/repo`, a `MacaronBert`
with its tokenizer (a masked-LM preset gets a new head; a classifier keeps its head where the output
count fits). Its default, `macaron_bert_base`, is the name reserved for the authors' BERT-base Macaron
(issue 15, not published yet): until then it is the folder `odezoo convert fairseq ... --out
macaron_bert_base` writes from their checkpoint (README), or pass `--set base=FOLDER`; a `base` that is
none of these is refused before the workdir is touched (`check_base`). The preset written is
`<base>_glue_<task>`.

`macaron_bert_small_dictionary_en_dictionary_tags` and `bert_small_dictionary_en_dictionary_tags`
fine-tune the small encoders of `recipes.macaron.masked_lm` on the offline subject tags (`dictionary_tags`:
12 classes, scored on test and valid by accuracy and macro-F1) with the same machinery; their
settings (3 epochs, batch 32, peak 1e-4, 64 positions) are ours; their bases are the published
encoder presets (`--set base=FOLDER` fine-tunes an encoder of your own). Cost (measured, one busy CPU
thread, the 2-layer d = 128 encoders): ≈ 0.045 s per batch of 32 entries (2.3 words on average), 1,512
batches per epoch: ≈ 4 min a run.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from odezoo.data.glue import glue_examples, glue_task
from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron_bert import MacaronBert
from odezoo.models.macaron.macaron_bert_inputs import encode_examples, pack_inputs
from odezoo.models.macaron.macaron_tasks import evaluate_glue
from odezoo.models.macaron.macaron_tokenizer import TOKENIZER_FILE
from odezoo.preset_folder import CONFIG_FILE, read_json
from odezoo.presets import list_presets, resolve
from odezoo.recipes._common import DistributedRunConfig, check_positive, eval_command, finish_run, start_run
from odezoo.recipes.macaron import bert_adam
from odezoo.training import checkpointed_epoch, epoch_dataset, fit_resumable, make_strategy


@dataclass(frozen=True, kw_only=True)
class Config(DistributedRunConfig):
    """Every knob of the recipe; `odezoo train RECIPE --set key=value` changes one (`limit`: training and
    validation examples; `data_dir`: the TFDS data folder)."""

    task: str = "cola"
    base: str = "macaron_bert_base"  # the pre-trained MacaronBert (with its tokenizer)
    epochs: int = 5
    batch_size: int = 32  # sentences (pairs) per update
    learning_rate: float = 3e-5  # peak
    weight_decay: float = 0.0
    loss: str = "binary"  # binary: one logit; cross_entropy: one per class; mse: STS-B's score
    symmetric: bool = False  # pair tasks: train on both sentence orders
    warmup_ratio: float = 0.1  # share of the updates spent warming up
    warmup_init_lr: float = 1e-7
    max_positions: int = 256  # tokens per example, <cls> and </s> included
    validation: str = ""  # the split reported first ("": the task's first validation split)
    seed: int = 1

    def preset_name(self):
        """`<base>_glue_<task>` or `<base>_dictionary_tags` (base: the preset's name or its folder's),
        `_mismatched` for MNLI-mm;
        `_seed<k>` when k is not 1."""
        if self.preset:
            return self.preset
        base = Path(self.base.removeprefix("hf://")).name
        mismatched = self.validation == "validation_mismatched"
        name = f"{base}_{glue_task(self.task).dataset.replace('/', '_')}"
        name += "_mismatched" if mismatched else ""
        return name + ("" if self.seed == 1 else f"_seed{self.seed}")

    def validate(self):
        """Raises `OdezooError` for a setting no run can use (before anything is written)."""
        task = glue_task(self.task)
        if not self.base:
            raise OdezooError("`base` names the pre-trained MacaronBert preset: --set base=PRESET_OR_FOLDER.")
        if task.is_regression:
            fitting = ("mse",)
        else:
            fitting = ("binary", "cross_entropy") if task.num_classes == 2 else ("cross_entropy",)
        if self.loss not in fitting:
            raise OdezooError(
                f"`loss` for {task.dataset} must be one of {list(fitting)}. Received: loss={self.loss!r}"
            )
        if self.symmetric and len(task.keys) != 2:
            raise OdezooError(
                f"`symmetric` swaps the two sentences of a pair; {task.dataset} has one. Received: "
                "symmetric=True"
            )
        if self.validation and self.validation not in task.validation:
            raise OdezooError(
                f"`validation` for {task.dataset} must be one of {list(task.validation)}. Received: "
                f"validation={self.validation!r}"
            )
        check_positive(self, "epochs", "batch_size")
        check_positive(self, "max_positions", minimum=3)
        check_positive(self, "limit", "weight_decay", "warmup_init_lr", "warmup_ratio", minimum=0)
        if self.warmup_ratio >= 1:
            raise OdezooError(f"`warmup_ratio` must be < 1. Received: warmup_ratio={self.warmup_ratio!r}")


COLA = Config(task="cola", epochs=5, batch_size=32, learning_rate=3e-5, loss="binary")
MRPC = Config(task="mrpc", epochs=4, batch_size=16, learning_rate=5e-5, loss="binary", symmetric=True)
STSB = Config(task="stsb", epochs=5, batch_size=16, learning_rate=5e-5, loss="mse", symmetric=True)
RTE = Config(task="rte", epochs=4, batch_size=16, learning_rate=5e-5, loss="cross_entropy")
SST2 = Config(task="sst2", epochs=3, batch_size=24, learning_rate=5e-5, loss="cross_entropy")
MNLI = Config(task="mnli", epochs=3, batch_size=24, learning_rate=5e-5, loss="cross_entropy")
MNLI_MISMATCHED = replace(MNLI, batch_size=16, validation="validation_mismatched")
QQP = Config(task="qqp", epochs=5, batch_size=16, learning_rate=5e-5, loss="binary", symmetric=True)
QNLI = Config(
    task="qnli", epochs=4, batch_size=16, learning_rate=3e-5, loss="cross_entropy", weight_decay=0.01
)
WNLI = replace(RTE, task="wnli")  # not in the table: RTE's row (ours)
# The offline subject-tag task on the small encoders pre-trained here (recipes.macaron.masked_lm; ours).
MACARON_BERT_SMALL_TAGS = Config(
    task="dictionary_tags", base="macaron_bert_small_dictionary_en", epochs=3, batch_size=32,
    learning_rate=1e-4, loss="cross_entropy", max_positions=64,
)  # fmt: skip
BERT_SMALL_TAGS = replace(MACARON_BERT_SMALL_TAGS, base="bert_small_dictionary_en")
CONFIGS = (COLA, SST2, MRPC, QQP, STSB, MNLI, MNLI_MISMATCHED, QNLI, RTE, WNLI, MACARON_BERT_SMALL_TAGS,
           BERT_SMALL_TAGS)  # fmt: skip


def train(config, workdir, *, callbacks=()):
    """Fine-tunes `config.base` on the task's training split, scores its validation split(s) as `odezoo
    eval` does and writes a preset with the base's tokenizer.

    Returns:
        `{split: {metric: value, ...}, "preset_dir"}`.
    """

    def prepare():  # the base (the default is a folder the user converts), then the strategy
        check_base(config.base)
        return make_strategy(config.strategy, config.tpu)

    workdir, strategy = start_run(workdir, config, prepare)
    task = glue_task(config.task)
    outputs = task.num_classes if config.loss == "cross_entropy" else 1
    with strategy.scope():
        model = MacaronBert.from_pretrained(
            config.base, num_classes=outputs, max_positions=config.max_positions, name=config.preset_name()
        )
    tokenizer = model.preset_tokenizer()
    dataset, steps = _training_dataset(config, task, tokenizer, checkpointed_epoch(workdir / "checkpoints"))
    total = steps * config.epochs
    with strategy.scope():
        model.compile(
            optimizer=bert_adam(config, total),
            loss={
                "binary": keras.losses.BinaryCrossentropy(from_logits=True),
                "cross_entropy": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "mse": keras.losses.MeanSquaredError(),
            }[config.loss],
        )
    checkpoint = fit_resumable(
        model, dataset, epochs=config.epochs, steps_per_epoch=steps, directory=workdir / "checkpoints",
        strategy=strategy, callbacks=callbacks,
    )  # fmt: skip
    splits = dict.fromkeys([config.validation or task.validation[0], *task.validation])
    results, records = {}, []
    for split in splits:
        result = evaluate_glue(model, tokenizer, task, split=split, limit=config.limit,
                               data_dir=config.data_dir or None)  # fmt: skip
        results[split] = {name: result[name] for name in task.metrics}
        command = eval_command(config, task.dataset, split)
        records += [
            {
                "dataset": task.dataset,
                "split": split,
                "metric": name,
                "value": value,
                "num_examples": result["num_examples"],
                "command": command,
            }  # fmt: skip
            for name, value in results[split].items()
        ]
    return finish_run(
        workdir,
        model,
        config,
        summary=results,
        history=checkpoint.history,
        metadata={
            "description": f"{config.base} fine-tuned on {task.dataset} ({config.epochs} epochs).",
            "dataset": task.dataset,
            "base": config.base,
            "metrics": records,
        },
        tokenizer=tokenizer,
    )


def check_base(base):
    """Raises, before anything is written, unless `base` names a preset, a folder or `hf://<org>/<repo>`
    (the default `macaron_bert_base` is a folder the user converts) holding a `MacaronBert` with its
    tokenizer."""
    if base.startswith("hf://") or Path(base).expanduser().is_dir() or base in list_presets():
        folder = resolve(base).folder
        saved = read_json(folder / CONFIG_FILE)
        if saved.get("class_name") != MacaronBert.__name__:
            raise OdezooError(
                f"`base` {base!r} is a {saved.get('class_name')}; the GLUE recipes fine-tune a MacaronBert "
                "preset with its tokenizer (e.g. macaron_bert_small_dictionary_en)."
            )
        if not (folder / TOKENIZER_FILE).is_file():
            raise OdezooError(
                f"`base` {base!r} holds no {TOKENIZER_FILE}: the fine-tuned model reads text with its base's "
                "tokenizer, so the base must be a preset folder saved with one (as the recipes and the "
                "converter write)."
            )
        return
    raise OdezooError(
        f"`base` {base!r} is no preset (`odezoo list`), preset folder or hf://<org>/<repo>. For the "
        "authors' BERT-base Macaron, convert their checkpoint: `odezoo convert fairseq "
        "checkpoint_pretrained.pt --dict data-bin/bert_corpus/dict.txt --bpe-codes "
        'data-bin/bert_corpus/bpe-code --out macaron_bert_base` (README.md, "Macaron Net: convert the '
        "authors' fairseq checkpoints\"); or fine-tune another encoder: --set base=PRESET_OR_FOLDER "
        "(e.g. the bundled macaron_bert_small_dictionary_en)."
    )


def _training_dataset(config, task, tokenizer, first_epoch=0):
    """`(tf.data.Dataset of (inputs, labels) batches in a fresh order every epoch, batches per epoch)`:
    the training split (and its swapped pairs where `symmetric`), encoded once."""
    import tensorflow as tf

    examples, labels = glue_examples(task, "train", limit=config.limit, data_dir=config.data_dir or None)
    if config.symmetric:
        examples, labels = examples + [pair[::-1] for pair in examples], np.concatenate([labels, labels])
    ids, firsts, _ = encode_examples(tokenizer, task.check_examples(examples), config.max_positions)
    if config.loss != "cross_entropy":
        labels = labels.astype("float32")[:, None]
    steps = -(-len(ids) // config.batch_size)

    def batches_of_epoch(epoch):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(ids))
        return (order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size))

    def make_batch(rows):
        inputs = pack_inputs([ids[i] for i in rows], [firsts[i] for i in rows], tokenizer.dictionary.PAD_ID)
        return inputs, labels[rows]

    names = ("token_ids", "segment_ids", "padding_mask")
    signature = (
        {name: tf.TensorSpec((None, None), tf.int32) for name in names},
        tf.TensorSpec((None, *labels.shape[1:]), tf.as_dtype(labels.dtype)),
    )
    return epoch_dataset(batches_of_epoch, make_batch, signature, first_epoch=first_epoch), steps
