"""Parallel text for translation, as (source, target) string pairs; tokenisation stays with the model family.

Sources: the Debian German–English dictionary (`trans-de-en`, offline, GPL-2+) as a corpus of short
phrase pairs with a fixed leak-free split; the IWSLT14 files that fairseq's `prepare-iwslt14.sh` writes;
WMT14 De–En through TensorFlow Datasets.
"""

import hashlib
import re
from pathlib import Path

import numpy as np

from odezoo.data._tfds import tfds_split
from odezoo.errors import OdezooError

DEBIAN_DICTIONARY = Path("/usr/share/trans/de-en")
SPLITS = ("train", "valid", "test")
DIRECTIONS = ("de-en", "en-de")
DICTIONARY_MAX_WORDS = 24  # per side
DICTIONARY_HELD_OUT = 15  # per mille of the dictionary's pair groups in each of test and valid
DICTIONARY_LARGEST_HELD_OUT_GROUP = 1000  # pairs; larger groups (polysemous common words) stay in train
IWSLT14_SCRIPT = "fairseq's examples/translation/prepare-iwslt14.sh"

_ANNOTATION = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)|<[^<>]*>")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" (?=[,.!?;:])")


def _check(name, value, allowed):
    if value not in allowed:
        raise OdezooError(f"{name} must be one of {list(allowed)}. Received: {name}={value!r}")


def dictionary_pairs(path=None, *, max_words=DICTIONARY_MAX_WORDS):
    """The deduplicated (German, English) phrase pairs of a Ding dictionary file, in file order.

    Each line is `German :: English`; ` | ` separates aligned sub-entries, `; ` alternatives of one
    sub-entry. Rules: skip `#` comments, lines without exactly one ` :: ` and lines whose sides hold
    different numbers of sub-entries; delete the annotations `{...}` (grammar), `[...]` (domain,
    register), `(...)` (explanations) and `<...>` (spelling variants), innermost first; pair sub-entry
    i of German with sub-entry i of English, keeping only the first alternative of each; collapse
    whitespace and drop the space before `,.!?;:`; drop pairs with a side that is empty, longer than
    `max_words` words or holding ` / ` (slot alternatives such as "ins / aus dem Stadion"); keep the
    first of identical pairs.
    """
    pairs = {}
    for _, line_pairs in _dictionary_lines(path, max_words):
        for pair in line_pairs:
            pairs.setdefault(pair, None)
    return list(pairs)


def _dictionary_lines(path, max_words):
    """`(line, its kept (German, English) pairs)` for every entry line of the file (rules:
    `dictionary_pairs`; pairs not yet deduplicated)."""
    path = Path(path or DEBIAN_DICTIONARY)
    if not path.is_file():
        raise OdezooError(
            f"The German–English dictionary {path} was not found: install it with "
            "`apt-get install trans-de-en` (Debian/Ubuntu) or pass the path of a Ding `de-en` file."
        )
    with open(path, encoding="utf-8") as f:
        for line in f:
            sides = line.split(" :: ")
            if line.startswith("#") or len(sides) != 2:
                continue
            german, english = (_strip_annotations(side).split("|") for side in sides)
            if len(german) != len(english):
                continue
            kept = []
            for de, en in zip(german, english):
                de, en = (_clean(part.split(";")[0]) for part in (de, en))
                if all(0 < len(s.split()) <= max_words and " / " not in s for s in (de, en)):
                    kept.append((de, en))
            yield line, kept


def _strip_annotations(text):
    while True:
        stripped = _ANNOTATION.sub(" ", text)
        if stripped == text:
            return text
        text = stripped


def _clean(text):
    return _SPACE_BEFORE_PUNCTUATION.sub("", " ".join(text.split()))


def _key(text):
    return " ".join(text.casefold().split())


def dictionary_splits(path=None, *, max_words=DICTIONARY_MAX_WORDS, direction="de-en"):
    """`{"train", "valid", "test": [(source, target), ...]}` from `dictionary_pairs`, split leak-free.

    Pairs that share a German or an English string (case- and whitespace-normalised) form one group,
    transitively; a group of at most `DICTIONARY_LARGEST_HELD_OUT_GROUP` pairs goes to test or valid
    when the sha256 of its smallest normalised German string falls in the first or second
    `DICTIONARY_HELD_OUT` per mille, every other group to train. The split depends on the file only,
    and no German or English string appears in two splits.
    """
    _check("direction", direction, DIRECTIONS)
    pairs = dictionary_pairs(path, max_words=max_words)
    split_of = _leak_free_splits([((("de", _key(de)), ("en", _key(en))), _key(de)) for de, en in pairs])
    splits = {split: [] for split in SPLITS}
    for (de, en), split in zip(pairs, split_of):
        splits[split].append((de, en) if direction == "de-en" else (en, de))
    return splits


def _leak_free_splits(items, held_out=None):
    """The split of each `(nodes, hash key)` item: items sharing a node form one group, transitively,
    placed by `_group_split` of its items' hash keys (`held_out` per mille each in test and valid;
    default `DICTIONARY_HELD_OUT`)."""
    parent = {}

    def root(node):
        while parent.setdefault(node, node) != node:
            parent[node] = node = parent[parent[node]]
        return node

    for nodes, _ in items:
        for node in nodes[1:]:
            parent[root(node)] = root(nodes[0])
    members = {}
    for nodes, key in items:
        members.setdefault(root(nodes[0]), []).append(key)
    split_of = {group: _group_split(keys, held_out) for group, keys in members.items()}
    return [split_of[root(nodes[0])] for nodes, _ in items]


def _group_split(keys, held_out):
    if len(keys) > DICTIONARY_LARGEST_HELD_OUT_GROUP:
        return "train"
    per_mille = int.from_bytes(hashlib.sha256(min(keys).encode()).digest()[:8], "big") % 1000
    return {0: "test", 1: "valid"}.get(per_mille // (held_out or DICTIONARY_HELD_OUT), "train")


def dictionary_corpus(split, *, path=None, max_words=DICTIONARY_MAX_WORDS, direction="de-en"):
    """One split of `dictionary_splits` (parses the file: call that for several splits)."""
    _check("split", split, SPLITS)
    return dictionary_splits(path, max_words=max_words, direction=direction)[split]


# The subject-tag task: frequent subject fields, and the register, region and period tags a line
# may also carry (ignored). Any other bracketed tag makes a line ambiguous.
SUBJECT_TAGS = (
    "ornith.", "med.", "chem.", "bot.", "zool.", "comp.", "econ.", "jur.", "cook.", "mil.", "mus.", "math.",
)  # fmt: skip
USAGE_TAGS = frozenset(
    "ugs. coll. geh. formal fig. pej. slang rare selten humor. poet. dated veraltet veraltend obs. archaic "
    "alt vulg. Sprw. prov. tm Br. Am. eAm. Bayr. Norddt. Süddt. Mitteldt. Austr. Ös. Schw. Sc. Dt. Irl. "
    "Can. NZ Aus.".split()
)
TAGS_HELD_OUT = 100  # per mille of the tag task's groups in each of test and valid
_TAG = re.compile(r"\[([^\[\]]*)\]")


def dictionary_tags(path=None, *, max_words=DICTIONARY_MAX_WORDS):
    """The subject-tag data set: `{"train", "valid", "test": (English texts, int64 labels)}`, the label
    the index of the line's tag in `SUBJECT_TAGS`.

    A line is kept when its bracketed tags (both sides) are one tag of `SUBJECT_TAGS` plus any of
    `USAGE_TAGS`; its examples are the English sides of its `dictionary_pairs` sub-entries (annotations,
    the tag included, removed). An English string (normalised) under two different tags is dropped,
    one under one tag kept once. Examples sharing a dictionary line, a German or an English string form
    one group (`dictionary_splits`' rule with `TAGS_HELD_OUT` per mille each in test and valid), so no
    English string, German string or line is in two splits.

    Counts on Debian's `trans-de-en` 1.9-6 (measured): 37,909 lines kept; train 48,357, valid 6,146,
    test 5,962 examples; the largest class (`med.`) is 19 % of train, the smallest (`math.`) 4 %.
    """
    examples = {}  # English key -> (English, German key, line number, tag) or None when tags conflict
    for number, (line, pairs) in enumerate(_dictionary_lines(path, max_words)):
        tags = set(_TAG.findall(line)) - USAGE_TAGS
        if len(tags) != 1 or not tags <= set(SUBJECT_TAGS):
            continue
        (tag,) = tags
        for de, en in pairs:
            key = _key(en)
            if key in examples and (examples[key] is None or examples[key][3] != tag):
                examples[key] = None
            else:
                examples.setdefault(key, (en, _key(de), number, tag))
    kept = [(key, example) for key, example in examples.items() if example is not None]
    split_of = _leak_free_splits(
        [((("en", key), ("de", de), ("line", number)), de) for key, (_, de, number, _) in kept], TAGS_HELD_OUT
    )
    splits = {split: ([], []) for split in SPLITS}
    for (_, (en, _, _, tag)), split in zip(kept, split_of):
        splits[split][0].append(en)
        splits[split][1].append(SUBJECT_TAGS.index(tag))
    return {split: (texts, np.array(labels, "int64")) for split, (texts, labels) in splits.items()}


def dictionary_english(path=None, *, max_words=DICTIONARY_MAX_WORDS):
    """English text for masked-LM pre-training: `{"train", "valid"}`, lists of the distinct English
    sides of `dictionary_splits`' train and valid pairs, in file order. Left out of both: every
    English string of `dictionary_tags`' valid and test splits (the tag task's held-out examples) and
    of `dictionary_splits`' test split.

    Counts on Debian's `trans-de-en` 1.9-6 (measured): train 312,993 strings (827,046 words), valid
    3,895 (10,978 words).
    """
    tags = dictionary_tags(path, max_words=max_words)
    excluded = {_key(en) for split in ("valid", "test") for en in tags[split][0]}
    text = {}
    for split, pairs in dictionary_splits(path, max_words=max_words).items():
        if split != "test":
            distinct = dict.fromkeys(en for _, en in pairs if _key(en) not in excluded)
            text[split] = list(distinct)
    return text


def join_bpe(line):
    """`line` with subword-nmt's `@@ ` marks removed, its subwords joined back into words (fairseq's
    `--remove-bpe`)."""
    return (line + " ").replace("@@ ", "").rstrip()


def iwslt14_files(folder, split, src="de", tgt="en", *, remove_bpe=False):
    """The (source, target) line pairs of `{split}.{src}` / `{split}.{tgt}` in a `prepare-iwslt14.sh`
    output folder (Moses-tokenised, lower-cased, BPE'd; valid = every 23rd training line).

    `remove_bpe` joins the `@@ ` subword marks back into words, as fairseq's `--remove-bpe`.
    """
    _check("split", split, SPLITS)
    folder = Path(folder)
    if not folder.is_dir():
        raise OdezooError(
            f"The IWSLT14 folder {folder} does not exist: run {IWSLT14_SCRIPT} on a connected machine "
            "and pass the folder it writes (iwslt14.tokenized.de-en)."
        )
    sides = []
    for lang in (src, tgt):
        file = folder / f"{split}.{lang}"
        if not file.is_file():
            raise OdezooError(
                f"{file} is missing: {IWSLT14_SCRIPT} writes train, valid and test files for de and en "
                f"into the folder. Received: split={split!r}, src={src!r}, tgt={tgt!r}"
            )
        with open(file, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]  # not splitlines(): U+2028 etc. are text
        sides.append([join_bpe(line) for line in lines] if remove_bpe else lines)
    if len(sides[0]) != len(sides[1]):
        raise OdezooError(
            f"{folder / f'{split}.{src}'} has {len(sides[0])} lines but {folder / f'{split}.{tgt}'} has "
            f"{len(sides[1])}: the files are not parallel; run {IWSLT14_SCRIPT} again."
        )
    return list(zip(*sides))


def wmt14_dataset(split, *, direction="de-en", data_dir=None, download=True):
    """WMT14 De–En from TFDS (`wmt14_translate/de-en`; splits train, validation, test):
    `(tf.data.Dataset of (source, target) tf.string, number of pairs)`."""
    _check("direction", direction, DIRECTIONS)
    ds, count = tfds_split("wmt14_translate/de-en", split, data_dir, download)
    return (ds if direction == "de-en" else ds.map(lambda de, en: (en, de))), count


def wmt14_pairs(split, *, direction="de-en", data_dir=None, limit=0):
    """The first `limit` (0: all) pairs of `wmt14_dataset` as `(source, target)` str tuples."""
    ds, _ = wmt14_dataset(split, direction=direction, data_dir=data_dir)
    return [(s.decode(), t.decode()) for s, t in (ds.take(limit) if limit else ds).as_numpy_iterator()]
