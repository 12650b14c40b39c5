"""Parallel-text loaders: the Debian dictionary parser and its leak-free split (synthetic file and the
real one), the IWSLT14 folder reader, WMT14 on TFDS mock data, and every error message."""

import pytest
import tensorflow_datasets as tfds

from odezoo import OdezooError
from odezoo.data import (
    dictionary_corpus,
    dictionary_pairs,
    dictionary_splits,
    iwslt14_files,
    wmt14_dataset,
    wmt14_pairs,
)
from odezoo.data import text as text_module

HEADER = """\
# Version :: devel 2023-01-30
# Copyright (c) :: Frank Richter <frank.richter.tu-chemnitz.de>,
# License :: GPL Version 2 or later; GNU General Public License
"""
ENTRIES = """\
Aal {m} (auf der Speisekarte) [cook.] | Aal blau; blauer Aal :: Eel (on a menu) | Eel au bleu; Eel steamed
Aalreuse {f}; Aalkorb {m} | Aalreusen {pl} :: eel trap; weel [archaic] <weely> | eel traps; weels
Abholung {f} (von jdm. (bzw. etw.)) , sofort :: collection (of sb./sth.) ,  at once
Aalreuse {f} :: eel trap
Abholzen {n} / Abholzung {f} :: shrub clearing
Klammer [/ | schließende Klammer /] :: bracket [/ | closing bracket /]
[/ | x /] :: [/ | y /]
eins | zwei :: one
a line without the separator
Wirkt die Tablette schon? :: Is the pill taking effect?
eins zwei drei vier fünf :: one two three four five
"""
EXPECTED = [
    ("Aal", "Eel"),
    ("Aal blau", "Eel au bleu"),
    ("Aalreuse", "eel trap"),
    ("Aalreusen", "eel traps"),
    ("Abholung, sofort", "collection, at once"),
    ("Klammer", "bracket"),
    ("Wirkt die Tablette schon?", "Is the pill taking effect?"),
    ("eins zwei drei vier fünf", "one two three four five"),
]


def _assert_leak_free(splits):
    pairs = [pair for split in splits.values() for pair in split]
    assert len(pairs) == len(set(pairs)), "duplicate pairs"
    for side in (0, 1):
        owner = {}
        for name, split in splits.items():
            for pair in split:
                key = " ".join(pair[side].casefold().split())
                assert owner.setdefault(key, name) == name, f"{pair[side]!r} in {owner[key]} and {name}"


@pytest.fixture
def dictionary(tmp_path):
    path = tmp_path / "de-en"
    path.write_text(HEADER + ENTRIES, encoding="utf-8")
    return path


def test_parser_keeps_clean_first_alternatives_of_aligned_sub_entries(dictionary):
    assert dictionary_pairs(dictionary) == EXPECTED
    assert dictionary_pairs(dictionary, max_words=4) == EXPECTED[:-2]


def test_synthetic_split_is_leak_free_deterministic_and_keeps_large_groups_in_train(tmp_path, monkeypatch):
    lines = [f"Wort{i} {{n}} | Wörter{i} {{pl}} :: word{i} | words{i}" for i in range(300)]
    lines += [f"Bank{i} :: bank{i}\nUfer{i} :: Bank{i}\nUfer{i} :: shore{i}" for i in range(100)]
    path = tmp_path / "de-en"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(text_module, "DICTIONARY_HELD_OUT", 250)  # 25 % each in test and valid
    splits = dictionary_splits(path)
    assert {name: len(split) for name, split in splits.items()} == {"train": 463, "valid": 199, "test": 238}
    _assert_leak_free(splits)
    assert splits == dictionary_splits(path)
    assert dictionary_corpus("test", path=path, direction="en-de") == [(en, de) for de, en in splits["test"]]
    monkeypatch.setattr(text_module, "DICTIONARY_LARGEST_HELD_OUT_GROUP", 2)  # the Bank/Ufer triples
    held_out = dictionary_splits(path)["test"] + dictionary_splits(path)["valid"]
    assert held_out and not any(de.startswith(("Bank", "Ufer")) for de, _ in held_out)


@pytest.mark.slow  # reads and splits the whole dictionary: about a minute
@pytest.mark.skipif(not text_module.DEBIAN_DICTIONARY.is_file(), reason="needs `apt-get install trans-de-en`")
def test_real_debian_dictionary():
    splits = dictionary_splits()
    sizes = {name: len(split) for name, split in splits.items()}
    total = sum(sizes.values())
    assert total > 300_000 and all(0.01 < sizes[name] / total < 0.02 for name in ("test", "valid")), sizes
    _assert_leak_free(splits)
    assert dictionary_splits() == splits
    sentence = ("Wirkt die Tablette schon?", "Is the pill taking effect?")
    assert any(sentence in split for split in splits.values())


def test_dictionary_errors(tmp_path):
    with pytest.raises(OdezooError) as info:
        dictionary_corpus("train", path=tmp_path / "de-en")
    assert str(info.value) == (
        f"The German–English dictionary {tmp_path / 'de-en'} was not found: install it with "
        "`apt-get install trans-de-en` (Debian/Ubuntu) or pass the path of a Ding `de-en` file."
    )
    with pytest.raises(OdezooError) as info:
        dictionary_corpus("validation", path=tmp_path / "de-en")
    assert str(info.value) == "split must be one of ['train', 'valid', 'test']. Received: split='validation'"
    with pytest.raises(OdezooError) as info:
        dictionary_splits(tmp_path / "de-en", direction="de-fr")
    assert str(info.value) == "direction must be one of ['de-en', 'en-de']. Received: direction='de-fr'"


def test_iwslt14_folder_round_trip_and_bpe_undo(tmp_path):
    (tmp_path / "test.de").write_text("das ist ein sch@@ ön@@ es haus .\nja@@\n", encoding="utf-8")
    (tmp_path / "test.en").write_text("this is a beauti@@ ful house \u2028.\nyes\n", encoding="utf-8")
    assert iwslt14_files(tmp_path, "test") == [
        ("das ist ein sch@@ ön@@ es haus .", "this is a beauti@@ ful house \u2028."),
        ("ja@@", "yes"),
    ]
    assert iwslt14_files(tmp_path, "test", "en", "de", remove_bpe=True) == [
        ("this is a beautiful house \u2028.", "das ist ein schönes haus ."),
        ("yes", "ja"),
    ]


def test_iwslt14_errors(tmp_path):
    script = "fairseq's examples/translation/prepare-iwslt14.sh"
    with pytest.raises(OdezooError) as info:
        iwslt14_files(tmp_path / "nowhere", "train")
    assert str(info.value) == (
        f"The IWSLT14 folder {tmp_path / 'nowhere'} does not exist: run {script} on a connected machine "
        "and pass the folder it writes (iwslt14.tokenized.de-en)."
    )
    (tmp_path / "valid.de").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(OdezooError) as info:
        iwslt14_files(tmp_path, "valid")
    assert str(info.value) == (
        f"{tmp_path / 'valid.en'} is missing: {script} writes train, valid and test files for de and en "
        "into the folder. Received: split='valid', src='de', tgt='en'"
    )
    (tmp_path / "valid.en").write_text("a\n", encoding="utf-8")
    with pytest.raises(OdezooError) as info:
        iwslt14_files(tmp_path, "valid")
    assert str(info.value) == (
        f"{tmp_path / 'valid.de'} has 2 lines but {tmp_path / 'valid.en'} has 1: the files are not "
        f"parallel; run {script} again."
    )
    with pytest.raises(OdezooError) as info:
        iwslt14_files(tmp_path, "dev")
    assert str(info.value) == "split must be one of ['train', 'valid', 'test']. Received: split='dev'"


def test_wmt14_on_mock_data_both_directions():
    with tfds.testing.mock_data(num_examples=5):
        ds, count = wmt14_dataset("test")
        pairs = list(ds.as_numpy_iterator())
        reverse, _ = wmt14_dataset("test", direction="en-de")
        assert list(reverse.as_numpy_iterator()) == [(en, de) for de, en in pairs]
        assert wmt14_pairs("test", limit=3) == [(de.decode(), en.decode()) for de, en in pairs[:3]]
        assert wmt14_pairs("test", direction="en-de") == [(en.decode(), de.decode()) for de, en in pairs]
    assert count == len(pairs) == 5
    assert all(isinstance(s, bytes) for pair in pairs for s in pair)


def test_wmt14_missing_data_is_one_line(tmp_path):
    with pytest.raises(OdezooError) as info:
        wmt14_dataset("test", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert message.startswith("Could not load wmt14_translate/de-en (test) through TensorFlow Datasets: ")
    assert message.endswith(
        ". On a connected machine run `tfds build wmt14_translate/de-en` (or let odezoo download it), then "
        "pass its data folder with --data-dir / data_dir= if it is not ~/tensorflow_datasets."
    )
    assert "\n" not in message and ".." not in message
