"""The translation recipe: fairseq's schedule, loss and batching, the corpus cache, settings refused."""

import json
from dataclasses import replace

import numpy as np
import pytest

import odezoo
from odezoo.data import text
from odezoo.errors import OdezooError
from odezoo.recipes import get_recipe
from odezoo.recipes.macaron import LabelSmoothedCrossEntropy, translation
from odezoo.recipes.macaron.translation import DICTIONARY, batch_arrays, token_batches
from odezoo.training import InverseSquareRoot

GERMAN = ("das Haus", "der Hund", "die Katze", "ein Baum", "das Auto", "der Tisch", "die Tür", "ein Buch")
ENGLISH = ("the house", "the dog", "the cat", "a tree", "the car", "the table", "the door", "a book")
ADJECTIVES = (("groß", "big"), ("klein", "small"), ("rot", "red"), ("alt", "old"), ("neu", "new"))


@pytest.fixture(autouse=True)
def small_dictionary(monkeypatch, tmp_path):
    """A made-up phrase dictionary in place of the Debian one (whose split takes seconds), and a
    corpus cache of the test's own."""
    pairs = [
        (f"{de} ist {a_de}", f"{en} is {a_en}")
        for de, en in zip(GERMAN, ENGLISH)
        for a_de, a_en in ADJECTIVES
    ]
    splits = {"train": pairs * 5 + list(zip(GERMAN, ENGLISH)), "valid": pairs[:4], "test": pairs[:6]}
    monkeypatch.setattr(text, "dictionary_splits", lambda path=None, direction="de-en", **kw: splits)
    monkeypatch.setenv("ODEZOO_CACHE", str(tmp_path / "cache"))
    return splits


def test_inverse_square_root_is_fairseqs():
    schedule = InverseSquareRoot(1e-3, 100, init=1e-7)
    # fairseq numbers updates from 1: update t (optimizer step t - 1) gets init + (peak - init) t / warmup
    for step, expected in ((0, 1e-7 + (1e-3 - 1e-7) / 100), (49, 1e-7 + (1e-3 - 1e-7) * 0.5)):
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)
    assert float(schedule(99)) == pytest.approx(1e-3, rel=1e-6)
    assert float(schedule(399)) == pytest.approx(1e-3 * (100 / 400) ** 0.5, rel=1e-6)


def test_label_smoothed_cross_entropy_matches_fairseq_and_ignores_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype("float32")
    labels = np.array([[4, 5, 1], [6, 1, 1]])
    weights = (labels != 1).astype("float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    smooth = -log_probs.sum(-1)
    eps = 0.1
    per_token = (1 - eps) * nll + eps / 7 * smooth  # fairseq: eps_i = eps / V
    expected = (per_token * weights).sum() / weights.sum()
    loss = LabelSmoothedCrossEntropy(eps)(labels, logits, sample_weight=weights)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    changed = logits.copy()
    changed[0, 2] += 5.0  # a padded position
    assert float(LabelSmoothedCrossEntropy(eps)(labels, changed, sample_weight=weights)) == pytest.approx(
        expected, rel=1e-5
    )


def test_token_batches_cover_every_pair_once_within_the_budget():
    rng = np.random.default_rng(0)
    source, target = rng.integers(1, 30, 500), rng.integers(1, 30, 500)
    source[7] = 200  # longer than the budget alone: a batch of its own
    batches = token_batches(source, target, 100)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for batch in batches:
        width = max(max(source[i], target[i]) for i in batch)
        assert len(batch) == 1 or len(batch) * width <= 100
    assert [7] in [b.tolist() for b in batches]
    order = np.concatenate(batches)
    assert np.all(np.diff(target[order]) >= 0)  # ordered by target length


def test_batch_arrays_pad_and_shift_as_fairseq():
    inputs, labels, weights = batch_arrays([[5, 6, 2], [7, 2]], [[8, 2], [9, 10, 11, 2]], pad_id=1, eos_id=2)
    np.testing.assert_array_equal(inputs["encoder_token_ids"], [[5, 6, 2], [1, 7, 2]])  # left-padded
    np.testing.assert_array_equal(inputs["encoder_padding_mask"], [[1, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(labels, [[8, 2, 1, 1], [9, 10, 11, 2]])  # right-padded
    np.testing.assert_array_equal(inputs["decoder_token_ids"], [[2, 8, 1, 1], [2, 9, 10, 11]])
    np.testing.assert_array_equal(inputs["decoder_padding_mask"], weights)
    np.testing.assert_array_equal(weights, [[1, 1, 0, 0], [1, 1, 1, 1]])


def test_recipes_and_preset_names():
    assert get_recipe("macaron_dictionary_de_en")[1] == DICTIONARY
    baseline = get_recipe("transformer_dictionary_de_en")[1]
    assert baseline == replace(DICTIONARY, scheme="lie_trotter")
    assert replace(DICTIONARY, seed=2).preset_name() == "macaron_dictionary_de_en_seed2"
    iwslt = get_recipe("macaron_iwslt14_de_en")[1]
    assert (iwslt.num_layers, iwslt.hidden_dim, iwslt.num_heads, iwslt.intermediate_dim) == (6, 512, 4, 1024)
    training = (iwslt.learning_rate, iwslt.weight_decay, iwslt.warmup_updates, iwslt.dropout)
    assert training == (1.5e-3, 1e-4, 8000, 0.3)
    big = get_recipe("macaron_big_wmt14_en_de")[1]
    assert (big.hidden_dim, big.learning_rate, big.beam, big.lenpen) == (1024, 3e-3, 4, 0.6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scheme": "euler"}, "`scheme` must be one of ['strang', 'lie_trotter']. Received: scheme='euler'"),
        ({"hidden_dim": 100, "num_heads": 3}, "`hidden_dim` must be a multiple of `num_heads`"),
        ({"dataset": "iwslt14"}, "pass it with --set data_dir=PATH/iwslt14.tokenized.de-en"),
        ({"max_tokens": 0}, "`max_tokens` must be >= 1. Received: max_tokens=0"),
        ({"direction": "de-fr"}, "`direction` must be one of ['de-en', 'en-de']"),
    ],
)
def test_bad_settings_are_refused_before_the_workdir_exists(tmp_path, changes, message):
    with pytest.raises(OdezooError, match=message.replace("[", r"\[").replace("(", r"\(")):
        translation.train(replace(DICTIONARY, **changes), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_iwslt14_without_bpe_codes_says_where_they_are(tmp_path):
    for split in ("train",):
        for lang in ("de", "en"):
            (tmp_path / f"{split}.{lang}").write_text("ein haus\n" if lang == "de" else "a house\n")
    config = replace(DICTIONARY, dataset="iwslt14", data_dir=str(tmp_path))
    with pytest.raises(OdezooError, match=r"code is missing: prepare-iwslt14.sh writes its BPE codes there"):
        translation.prepare_corpus(config)


def test_corpus_is_cached_by_content(monkeypatch):
    config = replace(DICTIONARY, limit=150, bpe_merges=50)
    tokenizer, sources, targets = translation.prepare_corpus(config)
    pairs = translation._training_pairs(config)
    assert len(sources) == len(targets) == len(pairs) == 150
    np.testing.assert_array_equal(sources[3], tokenizer.to_ids(pairs[3][0]))
    np.testing.assert_array_equal(targets[3], tokenizer.to_ids(pairs[3][1]))

    def refuse(*args):
        raise AssertionError("the cached corpus was tokenised again")

    monkeypatch.setattr(translation, "_tokenizer", refuse)
    again, sources2, _ = translation.prepare_corpus(config)
    assert again.dictionary.symbols == tokenizer.dictionary.symbols
    assert all(np.array_equal(a, b) for a, b in zip(sources, sources2))
    with pytest.raises(AssertionError, match="tokenised again"):  # other settings: another entry
        translation.prepare_corpus(replace(config, bpe_merges=60))


@pytest.mark.slow
def test_a_tiny_run_writes_a_preset_that_translates_and_resumes_to_the_same_result(tmp_path):
    config = replace(
        DICTIONARY, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, bpe_merges=30,
        max_tokens=64, warmup_updates=5, epochs=2, beam=2,
    )  # fmt: skip
    summary = translation.train(config, tmp_path / "run")
    folder = tmp_path / "run" / "macaron_dictionary_de_en"
    assert summary["preset_dir"] == str(folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    bleu = next(m for m in metadata["metrics"] if m["metric"] == "bleu")
    assert bleu["value"] == summary["bleu"] and bleu["num_examples"] == 6
    assert bleu["command"] == "odezoo eval macaron_dictionary_de_en --dataset dictionary"
    assert len(metadata["history"]) == 2 and metadata["history"][1]["loss"] < metadata["history"][0]["loss"]
    assert {"dict.txt", "bpe.codes", "tokenizer.json"} <= set(metadata["files"])
    model = odezoo.load(folder)
    translations = model.translate(["der Hund ist rot"], beam=2)
    assert translations == model.translate(["der Hund ist rot"], beam=2, tokenizer=model.preset_tokenizer())
    again = translation.train(config, tmp_path / "run")  # every epoch checkpointed: only the evaluation
    assert again["bleu"] == summary["bleu"]


@pytest.fixture
def tiny_base(tmp_path, small_dictionary):
    """A translation preset folder of another architecture and direction than DICTIONARY's (1 layer,
    d = 16, en-de), its tokenizer learned on the nouns alone (the ß of "groß" is outside)."""
    from odezoo.models.macaron.macaron import MacaronTransformer
    from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer

    tokenizer = MacaronTokenizer.train(list(zip(ENGLISH, GERMAN)), num_merges=20, source_lang="en",
                                       target_lang="de")  # fmt: skip
    model = MacaronTransformer(vocabulary_size=len(tokenizer.dictionary), num_layers=1, hidden_dim=16,
                               num_heads=2, intermediate_dim=32)  # fmt: skip
    folder = tmp_path / "tiny_base"
    model.save_pretrained(folder, metadata={"preset": "tiny_base"}, assets=tokenizer.save(tmp_path / "tok"))
    return folder


def test_a_base_sets_the_architecture_and_a_contradicting_setting_is_refused(tmp_path, tiny_base, capsys):
    from odezoo.cli import main
    from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer

    config = DICTIONARY.configure({"base": str(tiny_base), "limit": "12"}, "macaron_dictionary_de_en")
    settings = (config.num_layers, config.hidden_dim, config.num_heads, config.intermediate_dim)
    assert settings == (1, 16, 2, 32) and (config.scheme, config.direction) == ("strang", "en-de")
    assert config.preset_name() == "tiny_base_dictionary" and config.dropout == DICTIONARY.dropout
    config.validate()  # the settings the base filled in agree with it
    # the corpus is encoded with the base's tokenizer: its BPE, `<unk>` for what its dictionary lacks
    tokenizer, sources, targets = translation.prepare_corpus(config)
    base = MacaronTokenizer.load(tiny_base)
    assert tokenizer.dictionary.symbols == base.dictionary.symbols and tokenizer.source_lang == "en"
    pairs = translation._training_pairs(config)
    for ids, sentence in zip(sources, (source for source, _ in pairs)):
        np.testing.assert_array_equal(ids, base.to_ids(sentence))
    assert any(base.dictionary.UNK_ID in ids for ids in sources)  # "groß": ß is outside
    workdir = tmp_path / "run"
    contradicting = DICTIONARY.configure({"base": str(tiny_base), "hidden_dim": "32", "direction": "de-en"},
                                         "macaron_dictionary_de_en")  # fmt: skip
    message = (
        f"`base` '{tiny_base}' defines the architecture and direction: it has hidden_dim=16, direction="
        "'en-de'. Received: hidden_dim=32, direction='de-en' (leave them out: the fine-tuned model keeps "
        "its base's)."
    )
    for wrong in (contradicting, replace(DICTIONARY, base=str(tiny_base))):  # --set, or Python's replace
        with pytest.raises(OdezooError, match="defines the architecture and direction: it has "):
            translation.train(wrong, workdir)
    with pytest.raises(OdezooError) as error:
        translation.train(contradicting, workdir)
    assert str(error.value) == message
    args = ["train", "macaron_dictionary_de_en", "--set", f"base={tiny_base}", "--set", "hidden_dim=32",
            "--workdir", str(workdir)]  # fmt: skip
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("odezoo train: error: `base` ") and "\n" not in error
    with pytest.raises(OdezooError, match=r"is a MacaronBert; the translation recipe fine-tunes a Macaron"):
        DICTIONARY.configure({"base": "macaron_bert_small_dictionary_en"}, "macaron_dictionary_de_en")
    with pytest.raises(
        OdezooError, match=r"`base` 'no_such_preset' is no translation preset: Unknown preset"
    ):
        DICTIONARY.configure({"base": "no_such_preset"}, "macaron_dictionary_de_en")
    assert not workdir.exists()


@pytest.mark.slow
def test_fine_tuning_a_preset_starts_from_its_weights_and_keeps_its_tokenizer(tmp_path):
    """A run at a learning rate of 1e-30 (the weights cannot move in float32): the fine-tuned preset holds
    the bundled base's weights exactly, so it was loaded, not initialised; it loads, translates as the
    base does and carries the base's tokenizer files."""
    from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer

    base = odezoo.load("macaron_dictionary_de_en")
    changes = {
        "base": "macaron_dictionary_de_en",
        "limit": "6",
        "epochs": "1",
        "beam": "1",
        "learning_rate": "1e-30",
        "warmup_init_lr": "0",
        "warmup_updates": "1",
        "weight_decay": "0",
    }
    config = DICTIONARY.configure(changes, "macaron_dictionary_de_en")  # fmt: skip
    summary = translation.train(config, tmp_path / "run")
    folder = tmp_path / "run" / "macaron_dictionary_de_en_dictionary"
    assert summary["preset_dir"] == str(folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert (
        metadata["base"] == "macaron_dictionary_de_en"
        and metadata["recipe_config"]["base"] == metadata["base"]
    )
    assert metadata["train_command"].startswith("odezoo train macaron_dictionary_de_en --set base=macaron_")
    assert len(metadata["history"]) == 1 and metadata["training_pairs"] == 6
    for name in ("dict.txt", "bpe.codes"):
        assert (folder / name).read_bytes() == (base.preset_folder / name).read_bytes()
    kept, theirs = MacaronTokenizer.load(folder), base.preset_tokenizer()
    assert kept.dictionary.symbols == theirs.dictionary.symbols and kept.bpe_codes == theirs.bpe_codes
    settings = ("lowercase", "escape", "source_lang", "target_lang", "aggressive_dash_splits")
    assert [getattr(kept, name) for name in settings] == [getattr(theirs, name) for name in settings]
    tuned = odezoo.load(folder)
    assert (
        tuned.get_config()["num_layers"] == base.num_layers and tuned.vocabulary_size == base.vocabulary_size
    )
    for mine, theirs in zip(tuned.weights, base.weights, strict=True):
        assert mine.path.split("/", 1)[1] == theirs.path.split("/", 1)[1]
        np.testing.assert_allclose(
            np.asarray(mine), np.asarray(theirs), rtol=0, atol=1e-20, err_msg=mine.path
        )
    sentences = ["der Hund ist rot", "das Haus"]
    assert tuned.translate(sentences, beam=1) == base.translate(sentences, beam=1)
