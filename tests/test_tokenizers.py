"""Macaron Net's text pipeline: fairseq's dict.txt, the Moses + lowercase + BPE tokenizer, `translate`."""

import pytest

pytest.importorskip("sacremoses")
pytest.importorskip("subword_nmt")

import numpy as np  # noqa: E402
from sacremoses import MosesDetokenizer, MosesTokenizer  # noqa: E402

from odezoo.data.text import DEBIAN_DICTIONARY, dictionary_pairs  # noqa: E402
from odezoo.errors import OdezooError  # noqa: E402
from odezoo.models.macaron.macaron_tokenizer import Dictionary, MacaronTokenizer  # noqa: E402

FIXED_PAIRS = [
    ("Über den Fluß: „Grüße“, sagte er – schön, oder?", 'Over the river: "hi", he said - nice, isn\'t it?'),
    ("Das kostet 3,50 Euro (inkl. MwSt.) & ist günstig!", "That costs 3.50 euros (incl. VAT) & is cheap!"),
    ("Die Straße ist nass; wir gehen trotzdem.", "The street is wet; we're going anyway."),
    ("Hörst du die Vögel? Sie singen schön.", "Do you hear the birds? They sing beautifully."),
    ("Ich habe es dir gesagt: „Öl ist teuer“.", "I told you: 'oil is expensive'."),
]  # fmt: skip


@pytest.fixture(scope="module")
def pairs():
    corpus = dictionary_pairs() if DEBIAN_DICTIONARY.is_file() else []
    return FIXED_PAIRS + corpus[:: max(1, len(corpus) // 40)][:40]


@pytest.fixture(scope="module")
def tokenizer(pairs):
    return MacaronTokenizer.train(pairs, num_merges=300)


def test_dictionary_file_round_trip_and_special_ids(tmp_path):
    lines = ["b a b", "c b", "a . d"]
    dictionary = Dictionary.build(lines)
    assert dictionary.symbols[:4] == ["<Lua heritage>", "<pad>", "</s>", "<unk>"]
    assert (dictionary.PAD_ID, dictionary.EOS_ID, dictionary.UNK_ID) == (1, 2, 3)
    # most frequent first, ties in order of first appearance, padded to a multiple of 8
    assert dictionary.symbols[4:] == ["b", "a", "c", ".", "d", *(f"madeupword000{i}" for i in range(7))]
    dictionary.save(tmp_path / "dict.txt")
    written = (tmp_path / "dict.txt").read_text().splitlines()
    assert written[:6] == ["b 3", "a 2", "c 1", ". 1", "d 1", "madeupword0000 0"] and len(written) == 12
    loaded = Dictionary.load(tmp_path / "dict.txt")
    assert loaded.symbols == dictionary.symbols and len(loaded) == 16
    np.testing.assert_array_equal(loaded.encode_line("a b zzz"), [5, 4, 3, 2])
    assert loaded.decode([5, 1, 3, 4, 2, 6]) == "a <unk> b"  # pad dropped, stops at </s>
    small = Dictionary.build(lines, threshold=2, padding_factor=1)
    assert small.symbols[4:] == ["b", "a"] and len(Dictionary.build(lines, nwords=5, padding_factor=1)) == 5


def test_dictionary_errors_say_what_to_do(tmp_path):
    (tmp_path / "dict.txt").write_text("a 3\nb\n")
    with pytest.raises(OdezooError, match=r"line 2 is 'b', not `symbol count`: is it a fairseq dict.txt\?"):
        Dictionary.load(tmp_path / "dict.txt")
    with pytest.raises(OdezooError, match=r"Dictionary symbol 5 \('a'\) repeats symbol 4"):
        Dictionary(["a", "a"])
    with pytest.raises(OdezooError, match="Token id 99 is outside this dictionary of 4 symbols"):
        Dictionary().decode([99])


def test_round_trip_of_real_sentences(pairs, tokenizer):
    dictionary = tokenizer.dictionary
    for pair in pairs:
        for sentence, lang in zip(pair, ("de", "en")):
            line = tokenizer.tokenize(sentence, lang)
            # what Moses itself keeps of the lowercased sentence (it normalises some spacing)
            normalised = MosesDetokenizer(lang).detokenize(MosesTokenizer(lang).tokenize(sentence.lower()))
            assert tokenizer.detokenize(line, lang) == normalised
            # every subword of the training corpus is in the dictionary: the ids lose nothing
            assert tokenizer.detokenize(dictionary.decode(dictionary.encode_line(line)), lang) == normalised
            if pair in FIXED_PAIRS:
                assert normalised == sentence.lower() and "@@ " in line


def test_unknown_words_become_unk(tokenizer):
    ids, mask = tokenizer.encode(["Das Haus ж ist schön.", "schön"])
    unk = tokenizer.dictionary.UNK_ID
    assert (ids == unk).sum() == 1
    assert ids.dtype == np.int32 and mask[1, 0] == 0 and (ids[mask == 0] == 1).all()  # left-padded
    assert (ids[:, -1] == 2).all()
    assert tokenizer.decode(ids)[0] == "das haus <unk> ist schön."


def test_saved_assets_give_the_same_encodings(tmp_path, tokenizer, pairs):
    assets = tokenizer.save(tmp_path / "tok")
    assert sorted(assets) == ["bpe.codes", "dict.txt", "tokenizer.json"]
    loaded = MacaronTokenizer.load(tmp_path / "tok")
    sentences = [de for de, _ in pairs]
    for a, b in zip(tokenizer.encode(sentences), loaded.encode(sentences)):
        np.testing.assert_array_equal(a, b)
    assert loaded.dictionary.symbols == tokenizer.dictionary.symbols
    assert (loaded.source_lang, loaded.target_lang, loaded.lowercase) == ("de", "en", True)
    from_files = MacaronTokenizer.from_files(assets["dict.txt"], assets["bpe.codes"])
    np.testing.assert_array_equal(from_files.encode(sentences)[0], loaded.encode(sentences)[0])
    with pytest.raises(OdezooError, match="holds no tokenizer.json: pass the folder a MacaronTokenizer"):
        MacaronTokenizer.load(tmp_path)


def test_translate(tokenizer):
    from odezoo.models.macaron.macaron import MacaronTransformer

    model = MacaronTransformer(
        vocabulary_size=len(tokenizer.dictionary), num_layers=1, hidden_dim=16, num_heads=2,
        intermediate_dim=32, max_positions=24, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    )  # fmt: skip
    sentences = ["Das Haus ist schön.", "Ja", "Die Straße ist nass; wir gehen trotzdem."]
    translations = model.translate(sentences, tokenizer=tokenizer, beam=2, max_len_b=5, batch_size=2)
    assert len(translations) == 3 and all(isinstance(t, str) for t in translations)
    one = model.translate(sentences[2:], tokenizer=tokenizer, beam=2, max_len_b=5)
    assert one == translations[2:]  # independent of the batch it ran in
    with pytest.raises(OdezooError, match=r"Sentence 1 is empty after tokenisation \(received ' '\)"):
        model.translate(["Ja", " "], tokenizer=tokenizer)
    with pytest.raises(OdezooError, match=r"Sentence 0 has \d+ tokens with its </s>, more than the model's "):
        model.translate(["Das Haus " * 20], tokenizer=tokenizer)
    with pytest.raises(OdezooError, match=r"non-empty list of sentences \(str\)\. Received: 'Ja' \(wrap one"):
        model.translate("Ja", tokenizer=tokenizer)
    other = MacaronTokenizer(Dictionary(["a", "b", "c", "d"]), source_lang="de", target_lang="en")
    with pytest.raises(
        OdezooError,
        match=rf"The tokenizer's dictionary has 8 symbols but this model's vocabulary_size is "
        rf"{len(tokenizer.dictionary)}: use the tokenizer saved with the model's preset\.",
    ):
        model.translate(sentences, tokenizer=other)


FASTBPE_CODES = "t h 10\nth e</w> 8\na n 5\nan d</w> 4\n"  # `fast learnbpe` output: `a b count`, no header


def test_fastbpe_codes_segment_as_fast_applybpe():
    """fastBPE's codes merge in file order with `</w>` on a word's last symbol (subword-nmt's format 0.2,
    which a headerless file is not read as): the segmentations below follow fastBPE's merge rule by hand.
    `escape=False` is the BERT fork's `tokenizer.perl -no-escape`."""
    from odezoo.models.macaron.macaron_tokenizer import subword_nmt_codes

    tokenizer = MacaronTokenizer(Dictionary(), FASTBPE_CODES, escape=False, source_lang="en")
    assert tokenizer.tokenize("The band and then them") == "the b@@ and and th@@ e@@ n th@@ e@@ m"
    assert subword_nmt_codes(FASTBPE_CODES) == "#version: 0.2\nt h\nth e</w>\na n\nan d</w>\n"
    for codes in ("#version: 0.2\nt h\n", "t h\nth e\n"):  # subword-nmt's own codes are kept
        assert subword_nmt_codes(codes) == codes
    moses = {escape: MacaronTokenizer(Dictionary(), escape=escape, source_lang="en") for escape in (0, 1)}
    assert moses[False].tokenize("Don't & go") == "don 't & go"
    assert moses[True].tokenize("Don't & go") == "don &apos;t &amp; go"
    with pytest.raises(OdezooError, match=r"BPE codes line 2 is 'th e</w>', not fastBPE's `a b count`"):
        subword_nmt_codes("t h 10\nth e</w>\n")


def test_aggressive_dash_splits_are_saved_and_older_files_load_without_them(tmp_path):
    """WMT14's `tokenizer.perl -a`: `well-known` → `well @-@ known` and back; `tokenizer.json` records
    the setting only when on, and a file without it (every preset saved before) loads with it off."""
    from odezoo.presets import bundled_folder

    pairs = [("ein gut-bekanntes Haus", "a well-known house"), ("das E-Mail-Konto", "the e-mail account")]
    tokenizer = MacaronTokenizer.train(pairs, num_merges=40, aggressive_dash_splits=True)
    assert "@-@" in tokenizer.dictionary.indices and tokenizer.aggressive_dash_splits
    assert tokenizer.tokenize("a well-known house", "en").replace("@@ ", "") == "a well @-@ known house"
    assert tokenizer.decode(tokenizer.encode(["the e-mail account"])[0]) == ["the e-mail account"]
    tokenizer.save(tmp_path / "on")
    assert MacaronTokenizer.load(tmp_path / "on").aggressive_dash_splits
    plain = MacaronTokenizer.train(pairs, num_merges=40)
    assert "@-@" not in plain.dictionary.indices and "@-@" not in plain.tokenize("a well-known house", "en")
    plain.save(tmp_path / "off")
    assert "aggressive_dash_splits" not in (tmp_path / "off" / "tokenizer.json").read_text()
    old = bundled_folder("macaron_dictionary_de_en")
    assert "aggressive_dash_splits" not in (old / "tokenizer.json").read_text()
    assert not MacaronTokenizer.load(old).aggressive_dash_splits
