"""The translation task on a tiny Macaron preset folder with its tokenizer: `odezoo.load(...).translate`
without a tokenizer, `odezoo eval` / `odezoo predict`, the BLEU helpers, golden and spot checks, and one
clear line for each bad input."""

import json
import re

import numpy as np
import pytest

pytest.importorskip("sacremoses")
pytest.importorskip("subword_nmt")
pytest.importorskip("sacrebleu")

from test_cli import fails, run  # noqa: E402

import odezoo  # noqa: E402
from odezoo import OdezooError  # noqa: E402
from odezoo.data import text  # noqa: E402
from odezoo.models.macaron.macaron import INPUT_NAMES, MacaronTransformer  # noqa: E402
from odezoo.models.macaron.macaron_tasks import evaluate_translation  # noqa: E402
from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer  # noqa: E402
from odezoo.tasks.text import translation_scores  # noqa: E402

pytestmark = pytest.mark.skipif(
    not text.DEBIAN_DICTIONARY.is_file(), reason="needs the trans-de-en dictionary"
)
TINY = dict(
    num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, max_positions=256, dropout=0.0,
    attention_dropout=0.0, activation_dropout=0.0,
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def splits():
    """The Debian dictionary is split once for the module (a split takes seconds)."""
    splits = text.dictionary_splits()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text, "dictionary_splits", lambda path=None, **kwargs: splits)
        yield splits


@pytest.fixture(scope="module")
def tokenizer(splits):
    return MacaronTokenizer.train(splits["train"][::1000][:200], num_merges=200)


def _save(tmp, tokenizer, vocabulary_size=None, name="tiny"):
    model = MacaronTransformer(vocabulary_size=vocabulary_size or len(tokenizer.dictionary), **TINY)
    metadata = {"preset": name, "dataset": "dictionary"}
    return model.save_pretrained(tmp / name, metadata=metadata, assets=tokenizer.save(tmp / f"{name}_tok"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tokenizer):
    return _save(tmp_path_factory.mktemp("translation"), tokenizer)


@pytest.fixture(scope="module")
def model(folder):
    return odezoo.load(folder)


def test_a_loaded_preset_translates_with_its_own_tokenizer(folder, model, tokenizer, tmp_path):
    assert model.preset_folder == folder
    sentences = ["Wie geht es dir?", "Guten Morgen"]
    own = model.translate(sentences, beam=2, max_len_b=8)
    assert own == model.translate(sentences, tokenizer=tokenizer, beam=2, max_len_b=8)
    assert len(own) == 2 and all(isinstance(t, str) for t in own)
    built = MacaronTransformer(vocabulary_size=len(tokenizer.dictionary), **TINY)
    with pytest.raises(
        OdezooError, match=r"was built in code: there is no preset tokenizer\. Pass tokenizer="
    ):
        built.translate(sentences)
    bare = built.save_pretrained(tmp_path / "bare")
    with pytest.raises(OdezooError, match=rf"comes from {bare}, without tokenizer.json: there is no preset"):
        odezoo.load(bare).translate(sentences)


def test_cli_eval_on_dictionary_pairs(capsys, folder, model):
    code, out, _ = run(capsys, "eval", folder, "--limit", 20, "--beam", 2)
    result = json.loads(out)
    assert code == 0 and result["num_examples"] == 20 and result["dataset"] == "dictionary"
    assert (result["split"], result["beam"], result["lenpen"]) == ("test", 2, 1.0)
    assert all(0 <= result[k] <= 100 for k in ("bleu", "tokenized_bleu", "chrf"))
    assert "case:lc" in result["bleu_signature"] and len(result["examples"]) == 5
    assert result["examples"][0]["source"] == text.dictionary_corpus("test")[0][0]
    # a preset recording these examples passes its spot check
    metadata = {
        "examples": result["examples"],
        "metrics": [{"metric": "bleu", "value": result["bleu"], "beam": 2, "lenpen": 1.0}],
    }
    checks = model.task.spot_checks(model, metadata)
    assert len(checks) == 5 and all(ok for _, ok in checks), checks
    wrong = [{**metadata["examples"][0], "translation": "certainly not this"}]
    assert not model.task.spot_checks(model, {**metadata, "examples": wrong})[0][1]
    assert model.task.spot_checks(model, {}) == [("metadata records translation examples", False)]


def test_cli_predict(capsys, folder, model):
    code, out, _ = run(capsys, "predict", folder, "Wie geht es dir?", "Guten Morgen", "--beam", 2)
    results = json.loads(out)
    assert code == 0 and [r["source"] for r in results] == ["Wie geht es dir?", "Guten Morgen"]
    assert [r["translation"] for r in results] == model.translate(
        ["Wie geht es dir?", "Guten Morgen"], beam=2
    )


def test_cli_predict_from_a_file_into_a_file(capsys, folder, tmp_path):
    sentences = ["Wie geht es dir?", "Guten Morgen"]
    (tmp_path / "sources.txt").write_text("\n".join(sentences) + "\n")
    output = tmp_path / "translations.json"
    argv = ("predict", folder, "--input", tmp_path / "sources.txt", "--beam", 2, "--output", output)
    code, out, err = run(capsys, *argv)
    assert code == 0 and out == "", err
    assert json.loads(output.read_text()) == json.loads(
        run(capsys, "predict", folder, *sentences, "--beam", 2)[1]
    )
    assert fails(capsys, *argv).endswith(f"--output {output} exists; pass --overwrite to replace it.")
    assert run(capsys, *argv, "--overwrite")[0] == 0


def test_bleu_helpers_on_hand_made_strings():
    text_ = ["we don't know the way home", "the cat sat on the mat"]
    lines = ["we don &apos;t know the way home", "the cat sat on the mat"]
    perfect = translation_scores(text_, text_, lines, lines)
    assert perfect["bleu"] == perfect["tokenized_bleu"] == perfect["chrf"] == 100.0
    # detokenisation differs, the token lines agree: only sacreBLEU sees it
    moved = translation_scores(["we don ' t know the way home", text_[1]], text_, lines, lines)
    assert moved["tokenized_bleu"] == 100.0 and moved["bleu"] < 100.0
    cased = ["We don't know the way home", "The cat sat on the mat"]
    assert translation_scores(text_, cased, lines, lines, lowercase=True)["bleu"] == 100.0
    assert translation_scores(text_, cased, lines, lines)["bleu"] < 100.0
    # fairseq's BLEU: whitespace tokens, no smoothing; precisions 4/5, 3/4, 2/3, 1/2
    assert translation_scores(["x"], ["x"], ["a b c d e"], ["a b c d f"])["tokenized_bleu"] == pytest.approx(
        100 * 0.2**0.25, abs=1e-3
    )
    assert translation_scores(["x"], ["x"], ["a b c"], ["a b d"])["tokenized_bleu"] == 0.0


def test_golden_is_teacher_forced_logits(model, tokenizer):
    source, source_mask = tokenizer.encode(["Guten Morgen", "Das Haus ist schön."])
    target, target_mask = tokenizer.pad([np.append(2, tokenizer.to_ids("good morning")[:-1])] * 2)
    inputs = dict(zip(INPUT_NAMES, (source, source_mask, target, target_mask)))
    stored = {**inputs, "logits": np.asarray(model(inputs))}
    actual, expected = model.task.golden(model, stored)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    metadata = {"metrics": [{"metric": "bleu", "value": 12.345, "dataset": "dictionary", "split": "test"}]}
    assert model.task.headline(metadata) == "12.35 bleu (dictionary test)"
    assert model.task.card_quotes({**metadata, "train_command": "odezoo train x"}) == [
        "12.35",
        "odezoo train x",
    ]


def test_token_id_inputs_are_checked(model):
    ids = np.array([[5, 6, 2]])
    good = dict(zip(INPUT_NAMES, (ids, np.ones_like(ids), ids, np.ones_like(ids))))
    with pytest.raises(
        OdezooError, match="'encoder_token_ids' takes integer token ids .*received dtype float64"
    ):
        model.predict({**good, "encoder_token_ids": ids.astype(float)}, verbose=0)
    high = model.vocabulary_size
    with pytest.raises(
        OdezooError, match=rf"'decoder_token_ids' holds values in \[2, {high}\] but takes a vocab"
    ):
        model({**good, "decoder_token_ids": np.array([[2, high]])})


def test_bad_inputs_give_one_line_each(capsys, folder, tokenizer, tmp_path):
    assert fails(capsys, "predict", folder) == (
        "odezoo predict: error: Give the sentences to translate as arguments: "
        '`odezoo predict tiny "A sentence." "Another one."`.'
    )
    assert "Sentence 1 is empty after tokenisation (received '  ')" in fails(
        capsys, "predict", folder, "Ja", "  "
    )
    line = fails(capsys, "predict", folder, "Haus " * 300)
    assert re.search(
        r"error: Sentence 0 has \d+ tokens with its </s>, more than the model's max_positions=256", line
    )
    other = _save(tmp_path, tokenizer, vocabulary_size=len(tokenizer.dictionary) + 8, name="other")
    assert f"The tokenizer's dictionary has {len(tokenizer.dictionary)} symbols but this model's " in fails(
        capsys, "predict", other, "Ja"
    )
    assert fails(capsys, "eval", folder, "--dataset", "opus") == (
        "odezoo eval: error: Unknown translation data set 'opus' (--dataset); odezoo has dictionary, "
        "iwslt14, wmt14."
    )
    assert "--dataset iwslt14 needs --data-dir" in fails(capsys, "eval", folder, "--dataset", "iwslt14")
    for name in ("train.de", "train.en", "test.de"):
        (tmp_path / name).write_text("hallo\n")
    line = fails(capsys, "eval", folder, "--dataset", "iwslt14", "--data-dir", tmp_path)
    assert f"{tmp_path / 'test.en'} is missing: " in line and "Received: split='test'" in line
    assert "--sigma does not apply to" in fails(capsys, "eval", folder, "--sigma", "3")
    with pytest.raises(OdezooError, match="split must be one of"):
        evaluate_translation(odezoo.load(folder), tokenizer, "dictionary", split="dev")


def test_iwslt14_files_and_wmt14_evaluate(model, tokenizer, splits, tmp_path):
    """IWSLT14 lines are token lines: translated as they are, scored against their BPE-removed targets."""
    import tensorflow_datasets as tfds

    pairs = splits["test"][:3]
    for lang, side in (("de", 0), ("en", 1)):
        lines = [tokenizer.tokenize(pair[side], lang) for pair in pairs]
        (tmp_path / f"test.{lang}").write_text("".join(line + "\n" for line in lines))
    result = evaluate_translation(model, tokenizer, "iwslt14", beam=2, data_dir=tmp_path)
    expected = model.translate([de for de, _ in pairs], beam=2)
    assert result["num_examples"] == 3 and [e["translation"] for e in result["examples"]] == expected
    assert [e["reference"] for e in result["examples"]] == [en.lower() for _, en in pairs]
    with tfds.testing.mock_data(num_examples=4):
        result = evaluate_translation(model, tokenizer, "wmt14", beam=2, limit=2)
    assert (result["num_examples"], result["dataset"]) == (2, "wmt14") and 0 <= result["bleu"] <= 100


def test_a_saved_translation_preset_keeps_its_tokenizer(tmp_path, capsys):
    """Issue 27: a preset loaded and saved translates as the preset does, with the tokenizer it carried."""
    preset = odezoo.load("macaron_dictionary_de_en")
    source = json.loads((preset.preset_folder / "metadata.json").read_text())
    folder = preset.save_pretrained(tmp_path / "mine")
    metadata = json.loads((folder / "metadata.json").read_text())
    for name in ("dict.txt", "bpe.codes", "tokenizer.json"):
        assert metadata["files"][name] == source["files"][name], name
    assert (metadata["dataset"], metadata["direction"]) == ("dictionary", "de-en")
    assert metadata["license"] == source["license"] and metadata["base"] == "macaron_dictionary_de_en"
    assert not {"preset", "metrics", "examples"} & set(metadata)
    sentences = ["Das ist ein Haus."]
    expected = preset.translate(sentences)
    assert odezoo.load(folder).translate(sentences) == expected
    code, out, err = run(capsys, "predict", folder, *sentences)
    assert code == 0, err
    assert [r["translation"] for r in json.loads(out)] == expected
