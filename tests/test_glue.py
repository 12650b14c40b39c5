"""GLUE (docs/papers.md#macaron-glue): the tasks as TFDS stores them, the metrics against values computed by
hand, the fork's encoding of sentences and pairs, `odezoo eval --dataset glue/<task>` on mock data, the
recipes' hyperparameters and schedule, and one line for each bad input."""

import json

import numpy as np
import pytest

pytest.importorskip("sacremoses")
pytest.importorskip("sklearn")

import tensorflow_datasets as tfds  # noqa: E402
from test_cli import fails, run  # noqa: E402

from odezoo.data.glue import GLUE_TASKS, glue_examples, glue_metrics, glue_task  # noqa: E402
from odezoo.errors import OdezooError  # noqa: E402
from odezoo.models import MacaronBert  # noqa: E402
from odezoo.models.macaron.macaron_bert_inputs import encode_examples, pack_inputs  # noqa: E402
from odezoo.models.macaron.macaron_tokenizer import Dictionary, MacaronTokenizer  # noqa: E402
from odezoo.recipes import RECIPES  # noqa: E402
from odezoo.recipes.macaron import glue  # noqa: E402
from odezoo.training import WarmupLinearDecay  # noqa: E402

WORDS = ["the", "cat", "sat", "a", "dog", "ran", "."]  # ids 6..12 after <mask> = 4 and <cls> = 5
TINY = {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16, "max_positions": 12,
        "dropout": 0.0, "attention_dropout": 0.0}  # fmt: skip


def tiny_tokenizer():
    """Moses + lowercase, no BPE, a BERT dictionary: `<mask>` = 4, `<cls>` = 5, then `WORDS`."""
    return MacaronTokenizer(Dictionary(["<mask>", "<cls>", *WORDS]), source_lang="en", target_lang="en")


def tiny_preset(folder, tmp_path, **config):
    """A tiny MacaronBert (masked-LM unless `num_classes`) saved with the tiny tokenizer as assets."""
    model = MacaronBert(vocabulary_size=len(tiny_tokenizer().dictionary), **{**TINY, **config})
    return model.save_pretrained(folder, assets=tiny_tokenizer().save(tmp_path / "tokenizer"))


@pytest.mark.parametrize("name", sorted(GLUE_TASKS))
def test_tasks_match_the_tfds_builders(name):
    task = glue_task(f"glue/{name}")
    features = tfds.builder(task.dataset).info.features
    assert set(features) == {*task.keys, "label", "idx"}
    label = features["label"]
    assert (label.num_classes if task.num_classes > 1 else label.dtype.name) == (
        task.num_classes if task.num_classes > 1 else "float32"
    )
    assert task.label_names == (tuple(label.names) if task.num_classes > 1 else ())
    assert task.metrics[0] == {"cola": "matthews_corr", "mrpc": "f1", "qqp": "f1", "stsb": "pearson"}.get(
        name, "accuracy"
    )


def test_metrics_against_values_by_hand():
    """CoLA: TP 2, FN 1, FP 1, TN 2 -> MCC (4 - 1) / sqrt(3^4) = 1/3 (one logit: class 1 where > 0).
    MRPC: TP 2, FP 1, FN 1 -> F1 4/6, accuracy 2/4. STS-B: Pearson 5.5 / sqrt(5 · 8.75), Spearman
    1 - 6 · 2 / (4 · 15) = 0.8. MNLI: arg-max of 3 logits, 2 of 3 right. QQP predicting no duplicate:
    F1 0 (not undefined)."""
    cola = glue_metrics("cola", [1, 1, 0, 0, 1, 0], [[2.0], [-1.0], [-3.0], [0.5], [1.0], [-2.0]])
    assert cola == {"matthews_corr": pytest.approx(1 / 3)}
    mrpc = glue_metrics("mrpc", [1, 0, 1, 1], [[0, 1], [0, 1], [1, 0], [0, 1]])
    assert mrpc == {"f1": pytest.approx(2 / 3), "accuracy": 0.5}
    stsb = glue_metrics("stsb", np.array([1.0, 3.0, 2.0, 5.0]), [[1.0], [2.0], [3.0], [4.0]])
    assert stsb == {"pearson": pytest.approx(5.5 / (5 * 8.75) ** 0.5), "spearman": pytest.approx(0.8)}
    mnli = glue_metrics("mnli", [0, 2, 1], [[3, 1, 0], [0, 1, 2], [1, 0, 0]])
    assert mnli == {"accuracy": pytest.approx(2 / 3)}
    assert glue_metrics("qqp", [1, 0], [[-1.0], [-2.0]]) == {"f1": 0.0, "accuracy": 0.5}  # no positive


def test_pairs_and_sentences_are_encoded_as_the_fork():
    """`<cls> s1 </s> s2 </s>`, right-padded with `<pad>` = 1; segment 1 over <cls>, s1, its </s> and
    the padding, 0 over s2; the longer sentence loses its last tokens first."""
    tokenizer = tiny_tokenizer()
    ids, firsts, lengths = encode_examples(tokenizer, [("The cat sat.", "A dog"), ("a dog",)], 12)
    assert ids == [[5, 6, 7, 8, 12, 2, 9, 10, 2], [5, 9, 10, 2]] and firsts == [6, 4] and lengths == [9, 4]
    inputs = pack_inputs(ids, firsts)
    np.testing.assert_array_equal(inputs["token_ids"][1], [5, 9, 10, 2, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(inputs["segment_ids"], [[1] * 6 + [0] * 3, [1] * 9])
    np.testing.assert_array_equal(inputs["padding_mask"][1], [1] * 4 + [0] * 5)
    ids, firsts, lengths = encode_examples(tokenizer, [("the cat sat the cat", "a dog ran")], 8)
    assert ids == [[5, 6, 7, 8, 2, 9, 10, 2]] and firsts == [5] and lengths == [11]  # 5 + 3 words -> 3 + 2
    with pytest.raises(OdezooError, match="BERT dictionary holds"):
        encode_examples(MacaronTokenizer(Dictionary(WORDS)), [("a",)], 8)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: glue_task("glue/cols"), r"^Unknown GLUE task 'glue/cols'\. Did you mean glue/cola\?"),
        (
            lambda: glue_task("sst2").check_examples(["good", ("a", "b")]),
            r"^glue/sst2 takes one sentence per example; example 1 is \('a', 'b'\)\.$",
        ),
        (
            lambda: glue_task("mrpc").check_examples(["a"]),
            r"^glue/mrpc takes a pair \(sentence1, sentence2\) per example; example 0 is 'a'\.$",
        ),
        (
            lambda: glue_task("cola").check_labels([0, 1, 2]),
            r"^glue/cola takes class ids 0\.\.1; label 2 is 2 \(1 of 3 outside\)\.$",
        ),
        (lambda: glue_task("rte").check_labels([-1, -1]), r"label 0 is -1 .* test splits have no labels"),
        (lambda: glue_task("stsb").check_labels([7.0]), r"similarity scores in \[0, 5\]; label 0 is 7\.0"),
        (
            lambda: MacaronBert(vocabulary_size=13, num_classes=2, **TINY).predict(
                pack_inputs([[5, *range(6, 13), 2] * 2], [18])
            ),
            r"takes at most 12 tokens per sequence \(max_positions\); received a sequence of 18\.",
        ),
    ],
)
def test_bad_input_gives_one_line_each(call, message):
    with pytest.raises(OdezooError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_cli_eval_on_mock_glue(capsys, tmp_path):
    """`odezoo eval` on a fine-tuned preset: its task's metrics on mock data; a preset whose outputs do
    not fit the task, an unknown task and a flag of another task get one line each."""
    mlm = tiny_preset(tmp_path / "mlm", tmp_path)
    stsb = MacaronBert.from_pretrained(mlm, num_classes=1)
    stsb.head.kernel.assign(np.random.default_rng(0).normal(size=(8, 1)))  # the new head starts at 0
    folder = stsb.save_pretrained(tmp_path / "stsb", metadata={"dataset": "glue/stsb"},
                                  assets=tiny_tokenizer().save(tmp_path / "tok2"))  # fmt: skip
    with tfds.testing.mock_data(num_examples=6):
        code, out, _ = run(capsys, "eval", folder, "--batch-size", 4)
        assert code == 0
        result = json.loads(out)
        assert (result["dataset"], result["split"], result["num_examples"]) == ("glue/stsb", "validation", 6)
        assert set(result) >= {"pearson", "spearman", "truncated"}
        line = fails(capsys, "eval", folder, "--dataset", "glue/mnli")
        assert "has 1 outputs but glue/mnli has 3 classes" in line
        assert "Did you mean glue/rte" in fails(capsys, "eval", folder, "--dataset", "glue/rte2")
        assert "--beam does not apply to" in fails(capsys, "eval", folder, "--beam", "2")
        examples, labels = glue_examples("mnli", "validation_mismatched", limit=2)
        assert len(examples[0]) == 2 and labels.dtype == np.int64


def test_cli_predict_names_the_label_from_the_logits(capsys, tmp_path):
    """`odezoo predict` on a classifier: the arg-max class named as the data set names it, with its
    softmax probability; a pair's sentences separated by a tab; a missing sentence and no text get one
    line each."""
    mlm = tiny_preset(tmp_path / "mlm", tmp_path)
    rte = MacaronBert.from_pretrained(mlm, num_classes=2)
    rte.head.bias.assign([0.0, np.log(3.0)])  # the kernel starts at 0: p = (1/4, 3/4) for every input
    folder = rte.save_pretrained(tmp_path / "rte", metadata={"dataset": "glue/rte", "preset": "tiny_rte"},
                                 assets=tiny_tokenizer().save(tmp_path / "tok3"))  # fmt: skip
    code, out, _ = run(capsys, "predict", folder, "the cat sat .\ta dog ran .")
    assert code == 0
    (result,) = json.loads(out)
    assert result["label"] == "not_entailment" and result["probability"] == pytest.approx(0.75)
    line = fails(capsys, "predict", folder, "the cat sat .")
    assert "glue/rte takes a pair (sentence1, sentence2) per example" in line and "with a tab" in line
    assert 'Give the texts to classify as arguments: `odezoo predict tiny_rte "A sentence."' in fails(
        capsys, "predict", folder
    )


def test_recipes_carry_the_fork_table():
    """the table at docs/papers.md#macaron-glue, row by row (WNLI: RTE's row, ours); one recipe per task and
    MNLI-mm."""
    table = {  # task: epochs, batch, lr, wd, loss, symmetric
        "cola": (5, 32, 3e-5, 0.0, "binary", False),
        "mrpc": (4, 16, 5e-5, 0.0, "binary", True),
        "stsb": (5, 16, 5e-5, 0.0, "mse", True),
        "rte": (4, 16, 5e-5, 0.0, "cross_entropy", False),
        "sst2": (3, 24, 5e-5, 0.0, "cross_entropy", False),
        "mnli": (3, 24, 5e-5, 0.0, "cross_entropy", False),
        "mnli_mismatched": (3, 16, 5e-5, 0.0, "cross_entropy", False),
        "qqp": (5, 16, 5e-5, 0.0, "binary", True),
        "qnli": (4, 16, 3e-5, 0.01, "cross_entropy", False),
        "wnli": (4, 16, 5e-5, 0.0, "cross_entropy", False),
    }
    for name, row in table.items():
        _, config = RECIPES[f"macaron_bert_base_glue_{name}"]
        config.validate()
        assert (config.epochs, config.batch_size, config.learning_rate, config.weight_decay, config.loss,
                config.symmetric) == row  # fmt: skip
        assert (config.warmup_ratio, config.warmup_init_lr, config.max_positions) == (0.1, 1e-7, 256)
    assert {c.task for c in glue.CONFIGS} == {*GLUE_TASKS, "dictionary_tags"}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"task": "colla"}, "Did you mean glue/cola"),
        ({"loss": "mse"}, "`loss` for glue/cola must be one of"),
        ({"symmetric": True}, "`symmetric` swaps the two sentences of a pair; glue/cola has one"),
        ({"validation": "validation_matched"}, "must be one of \\['validation'\\]"),
        ({"base": ""}, "--set base="),
        ({"warmup_ratio": 1.0}, "warmup_ratio=1.0"),
    ],
)
def test_recipe_settings_are_checked(change, message):
    from dataclasses import replace

    with pytest.raises(OdezooError, match=message):
        replace(glue.COLA, **change).validate()


def test_schedule_warms_up_from_1e_7_then_decays_linearly_to_zero():
    schedule = WarmupLinearDecay(1e-4, 10, 110, 1e-7)
    lr = [float(schedule(step)) for step in (0, 4, 9, 10, 59, 109, 200)]  # updates 1, 5, 10, 11, ...
    expected = [1e-7 + (1e-4 - 1e-7) * 0.1, 1e-7 + (1e-4 - 1e-7) * 0.5, 1e-4, 1e-4 * 99 / 100, 5e-5, 0, 0]
    np.testing.assert_allclose(lr, expected, rtol=1e-5, atol=1e-12)
