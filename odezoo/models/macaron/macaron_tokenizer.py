"""Macaron Net's text pipeline: fairseq 0.6's `Dictionary` (`dict.txt`) and the IWSLT14 tokenizer of
`prepare-iwslt14.sh` (Moses tokenisation, lowercase, subword-nmt BPE), saved as preset assets. The BERT
fork's pipeline is the same with Moses' `-no-escape` and fastBPE codes (`subword_nmt_codes`).

Presets trained here use the same pipeline, with BPE codes learned by subword-nmt on the training
corpus, not SentencePiece: one pipeline then serves the converted checkpoints (whose dictionaries are
Moses + BPE tokens) and the trained presets, and both report BLEU on the same tokenised text as the
paper.
"""

import io
import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from odezoo.data.text import join_bpe
from odezoo.errors import OdezooError, check_integer, warn

DICTIONARY_FILE = "dict.txt"
BPE_CODES_FILE = "bpe.codes"
TOKENIZER_FILE = "tokenizer.json"
# `tokenizer.perl -a`'s token for a hyphen it splits off, and the older `##AT##` form of the same split
DASH_TOKEN, OLD_DASH_TOKEN = "@-@", "##AT##-##AT##"


class Dictionary:
    """fairseq 0.6's dictionary (`fairseq/data/dictionary.py`): symbols numbered in order, the four
    specials first, `<Lua heritage>` = 0 (fairseq 0.6's place holder where later versions put `<s>`),
    `<pad>` = 1, `</s>` = 2, `<unk>` = 3.

    `dict.txt` holds one `symbol count` line per further symbol, in id order; the specials are implicit.

    Args:
        symbols: the symbols after the specials, in id order.
        counts: their corpus counts (written to `dict.txt`; 0 when not given).
    """

    SPECIALS = ("<Lua heritage>", "<pad>", "</s>", "<unk>")
    PAD_ID, EOS_ID, UNK_ID = 1, 2, 3

    def __init__(self, symbols=(), counts=None):
        self.symbols = [*self.SPECIALS, *symbols]
        self.counts = list(counts) if counts is not None else [0] * len(symbols)
        self.indices = {}
        for i, symbol in enumerate(self.symbols):
            if symbol in self.indices:
                raise OdezooError(
                    f"Dictionary symbol {i} ({symbol!r}) repeats symbol {self.indices[symbol]}: symbols must "
                    f"be distinct and not one of the implicit specials {list(self.SPECIALS)}."
                )
            self.indices[symbol] = i

    @classmethod
    def build(cls, lines, *, threshold=0, nwords=-1, padding_factor=8):
        """The dictionary of the whitespace tokens of `lines`, as fairseq 0.6's `preprocess.py` builds
        it (`Dictionary.finalize`): most frequent first (ties in order of first appearance), symbols
        counted fewer than `threshold` times left out, at most `nwords` entries with the specials
        (-1: all), then `madeupword0000`, ... until the size is a multiple of `padding_factor`."""
        threshold = check_integer("threshold", threshold)
        padding_factor = check_integer("padding_factor", padding_factor, 1)
        nwords = -1 if nwords == -1 else check_integer("nwords", nwords, len(cls.SPECIALS))
        counter = Counter(token for line in lines for token in line.split())
        kept = [(s, c) for s, c in counter.most_common() if c >= threshold and s not in cls.SPECIALS]
        kept = kept[: nwords - len(cls.SPECIALS)] if nwords != -1 else kept
        padding = -(len(cls.SPECIALS) + len(kept)) % padding_factor
        kept += [(f"madeupword{i:04d}", 0) for i in range(padding)]
        return cls([s for s, _ in kept], [c for _, c in kept])

    @classmethod
    def load(cls, path):
        """Reads a fairseq `dict.txt` (`symbol count` per line, the last space separating them)."""
        symbols, counts = [], []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                symbol, _, count = line.rstrip("\n").rpartition(" ")
                if not count.isdigit():
                    raise OdezooError(
                        f"{path} line {number} is {line.rstrip()!r}, not `symbol count`: is it a fairseq "
                        "dict.txt?"
                    )
                symbols.append(symbol)
                counts.append(int(count))
        return cls(symbols, counts)

    def save(self, path):
        """Writes `dict.txt` (the specials left out, as fairseq does)."""
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"{s} {c}\n" for s, c in zip(self.symbols[len(self.SPECIALS) :], self.counts))

    def __len__(self):
        return len(self.symbols)

    def index(self, symbol):
        """The id of `symbol`, `<unk>`'s for a symbol not in the dictionary."""
        return self.indices.get(symbol, self.UNK_ID)

    def encode_line(self, line, *, append_eos=True):
        """The int32 ids of the whitespace tokens of `line`, followed by `</s>` (fairseq's
        `Tokenizer.tokenize`)."""
        ids = [self.index(token) for token in line.split()]
        return np.array(ids + [self.EOS_ID] * append_eos, "int32")

    def decode(self, ids):
        """The symbols of `ids` joined by spaces, up to the first `</s>`, `<pad>` left out."""
        symbols = []
        for i in np.asarray(ids).tolist():
            if i == self.EOS_ID:
                break
            if not 0 <= i < len(self):
                raise OdezooError(
                    f"Token id {i} is outside this dictionary of {len(self)} symbols: were the ids produced "
                    "by a model with this tokenizer's vocabulary?"
                )
            if i != self.PAD_ID:
                symbols.append(self.symbols[i])
        return " ".join(symbols)


class MacaronTokenizer:
    """Sentences to fairseq ids and back, as IWSLT14 was prepared (`prepare-iwslt14.sh`):
    Moses tokenisation (`sacremoses`, `tokenizer.perl -l <lang>`: escaping on unless `escape=False`, no
    aggressive dash splitting unless `aggressive_dash_splits`), lowercasing, BPE (`apply_bpe.py -c
    codes`), then the joined `Dictionary`. Back: symbols up to `</s>`, `@@ ` removed, Moses
    detokenisation (the text stays lowercase).

    `aggressive_dash_splits=True` is WMT14's `prepare-wmt14en2de.sh` (`tokenizer.perl -a`): a hyphen
    between letters or digits becomes a token of its own, `well-known` → `well @-@ known` (the
    `##AT##-##AT##` form instead where the dictionary holds that symbol and not `@-@`: data split by
    the older rule), joined back when detokenising.

    Sources are tokenised as `source_lang`, outputs detokenised as `target_lang`.

    Args:
        dictionary: the joined `Dictionary`.
        bpe_codes: the text of subword-nmt or fastBPE codes (see `subword_nmt_codes`; `None`: no BPE,
            the dictionary holds words).
        lowercase, escape, source_lang, target_lang: the pipeline's settings (`escape=False`:
            `tokenizer.perl -no-escape`, as the BERT fork).
        aggressive_dash_splits: `tokenizer.perl -a` (WMT14's `prepare-wmt14en2de.sh`; saved in
            `tokenizer.json` only when on, so that files without it load as before: off).
    """

    def __init__(
        self,
        dictionary,
        bpe_codes=None,
        *,
        lowercase=True,
        escape=True,
        source_lang="de",
        target_lang="en",
        aggressive_dash_splits=False,
    ):
        try:
            from sacremoses import MosesDetokenizer, MosesTokenizer
            from subword_nmt.apply_bpe import BPE
        except ImportError as error:
            raise OdezooError(
                f"MacaronTokenizer needs {error.name} (the `text` extra): pip install 'odezoo[text]'."
            ) from None

        self.dictionary = dictionary
        self.bpe_codes = bpe_codes
        self.lowercase, self.escape = bool(lowercase), bool(escape)
        self.aggressive_dash_splits = bool(aggressive_dash_splits)
        self.source_lang, self.target_lang = source_lang, target_lang
        self._bpe = None if bpe_codes is None else BPE(io.StringIO(subword_nmt_codes(bpe_codes)))
        self._moses = {
            lang: (MosesTokenizer(lang), MosesDetokenizer(lang)) for lang in (source_lang, target_lang)
        }

    @classmethod
    def from_files(cls, dict_path, bpe_codes_path=None, **settings):
        """A tokenizer of a fairseq `dict.txt` and subword-nmt codes file (the `__init__` settings as
        keywords)."""
        codes = None if bpe_codes_path is None else Path(bpe_codes_path).read_text(encoding="utf-8")
        return cls(Dictionary.load(dict_path), codes, **settings)

    @classmethod
    def load(cls, folder):
        """The tokenizer `save` wrote into `folder` (a preset folder)."""
        folder = Path(folder)
        if not (folder / TOKENIZER_FILE).is_file():
            raise OdezooError(
                f"{folder} holds no {TOKENIZER_FILE}: pass the folder a MacaronTokenizer was saved to (a "
                "translation preset's folder), or build one with MacaronTokenizer.from_files(dict, codes)."
            )
        settings = json.loads((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))
        codes = settings.pop("bpe_codes")
        return cls.from_files(folder / settings.pop("dictionary"), codes and folder / codes, **settings)

    def save(self, folder):
        """Writes `dict.txt`, the BPE codes and `tokenizer.json` into `folder`; returns `{asset name:
        path}` for `save_pretrained(assets=...)`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.dictionary.save(folder / DICTIONARY_FILE)
        settings = {
            "dictionary": DICTIONARY_FILE,
            "bpe_codes": None if self.bpe_codes is None else BPE_CODES_FILE,
            "lowercase": self.lowercase,
            "escape": self.escape,
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
        }
        if self.aggressive_dash_splits:  # written only when on: files without it are read as off
            settings["aggressive_dash_splits"] = True
        if self.bpe_codes is not None:
            (folder / BPE_CODES_FILE).write_text(self.bpe_codes, encoding="utf-8")
        (folder / TOKENIZER_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return {
            name: folder / name for name in (DICTIONARY_FILE, TOKENIZER_FILE, settings["bpe_codes"]) if name
        }

    @classmethod
    def train(
        cls,
        pairs,
        *,
        num_merges=10000,
        min_frequency=2,
        threshold=0,
        nwords=-1,
        padding_factor=8,
        lowercase=True,
        source_lang="de",
        target_lang="en",
        aggressive_dash_splits=False,
    ):
        """A tokenizer learned on `(source, target)` sentence pairs, as `prepare-iwslt14.sh` and fairseq's
        `preprocess.py --joined-dictionary`: BPE codes (`learn_bpe.py -s num_merges`, merges of pairs
        seen at least `min_frequency` times) and the joined dictionary (`Dictionary.build`) on the
        Moses-tokenised (`aggressive_dash_splits`: with `-a`), lowercased sources followed by the
        targets."""
        from subword_nmt.learn_bpe import learn_bpe

        num_merges = check_integer("num_merges", num_merges, 1)
        pairs = list(pairs)
        if not pairs or any(isinstance(pair, str) or len(pair) != 2 for pair in pairs):
            raise OdezooError(
                "MacaronTokenizer.train takes a non-empty list of (source, target) sentence pairs. "
                f"Received: {pairs[:3]!r:.200}{' ...' if len(pairs) > 3 else ''}"
            )
        settings = {"lowercase": lowercase, "source_lang": source_lang, "target_lang": target_lang,
                    "aggressive_dash_splits": aggressive_dash_splits}  # fmt: skip
        tokenizer = cls(Dictionary(), **settings)
        lines = [tokenizer._moses_line(source, source_lang) for source, _ in pairs]
        lines += [tokenizer._moses_line(target, target_lang) for _, target in pairs]
        codes = io.StringIO()
        learn_bpe(io.StringIO("\n".join(lines)), codes, num_merges, min_frequency)
        tokenizer = cls(Dictionary(), codes.getvalue(), **settings)
        tokenizer.dictionary = Dictionary.build(
            map(tokenizer._segment, lines), threshold=threshold, nwords=nwords, padding_factor=padding_factor
        )
        return tokenizer

    def _moses_line(self, sentence, lang):
        moses = self._moses[lang][0]
        aggressive = self.aggressive_dash_splits
        line = " ".join(moses.tokenize(sentence, escape=self.escape, aggressive_dash_splits=aggressive))
        line = line.lower() if self.lowercase else line
        if aggressive and self._dash_token != DASH_TOKEN:
            line = " ".join(self._dash_token if token == DASH_TOKEN else token for token in line.split())
        return line

    @property
    def _dash_token(self):
        """The split hyphen's token: Moses' `@-@`, or `##AT##-##AT##` where the dictionary has only that."""
        indices = self.dictionary.indices
        return OLD_DASH_TOKEN if OLD_DASH_TOKEN in indices and DASH_TOKEN not in indices else DASH_TOKEN

    def _segment(self, line):
        return line if self._bpe is None else " ".join(self._bpe.segment_tokens(line.split()))

    def tokenize(self, sentence, lang=None):
        """`sentence` as one line of subword tokens separated by spaces (`lang`: `source_lang` if `None`)."""
        if not isinstance(sentence, str):
            raise OdezooError(
                f"tokenize takes one sentence (str). Received: {sentence!r:.200} ({type(sentence).__name__})"
            )
        return self._segment(self._moses_line(sentence, lang or self.source_lang))

    def detokenize(self, line, lang=None):
        """A line of subword tokens as text: `@@ ` removed, Moses-detokenised (`lang`: `target_lang` if
        `None`)."""
        moses = self._moses[lang or self.target_lang][1]
        tokens = join_bpe(line).split()
        if self.aggressive_dash_splits:  # Moses joins `@-@` back itself
            tokens = [DASH_TOKEN if token == OLD_DASH_TOKEN else token for token in tokens]
        return moses.detokenize(tokens, unescape=self.escape)

    def to_ids(self, sentence):
        """The int32 ids of `sentence`, ending with `</s>`."""
        return self.dictionary.encode_line(self.tokenize(sentence))

    def encode_sources(self, sentences, *, tokenized=False):
        """The int32 ids of each of `sentences` (a list of str), ending with `</s>`: raw text tokenised
        (`to_ids`), or, with `tokenized`, lines of the dictionary's subword tokens taken as they are.
        An `OdezooWarning` with the numbers says where a sentence holds nothing but `<unk>` (no token
        the model knows: its translation is a guess), and where token lines hold unknown tokens that
        tokenising them as text avoids (raw text passed with `tokenized=True`)."""
        sentences = check_sentences(sentences)
        unk = Dictionary.UNK_ID
        ids = [(self.dictionary.encode_line if tokenized else self.to_ids)(s) for s in sentences]
        unknown = [i for i, row in enumerate(ids) if len(row) > 1 and (row[:-1] == unk).all()]
        if unknown:
            i = unknown[0]
            warn(
                f"{len(unknown)} of {len(ids)} sentence(s) hold no token the model knows, e.g. sentence {i} "
                f"({sentences[i]!r:.60}: {len(ids[i]) - 1} token(s), all <unk>): its translation is a guess.",
                stacklevel=3,  # the caller of `translate`
            )
        if tokenized:
            counts = [(int((row == unk).sum()), s) for row, s in zip(ids, sentences)]
            raw = [(i, n, int((self.to_ids(s) == unk).sum())) for i, (n, s) in enumerate(counts) if n]
            raw = [(i, n, m) for i, n, m in raw if m < n]
            if raw:
                i, n, m = raw[0]
                warn(
                    f"{len(raw)} of {len(ids)} token line(s) look like raw text, e.g. line {i} "
                    f"({sentences[i]!r:.60}): {n} token(s) outside the dictionary as a token line, {m} when "
                    "tokenised as text. Pass tokenized=False (the default) for text.",
                    stacklevel=3,
                )
        return ids

    def pad(self, id_lists):
        """`(ids, padding_mask)`, int32 `(batch, longest)`: the sequences left-padded with `<pad>` (as
        fairseq pads sources), the mask 1 at real tokens."""
        longest = max(map(len, id_lists))
        ids = np.full((len(id_lists), longest), Dictionary.PAD_ID, "int32")
        mask = np.zeros((len(id_lists), longest), "int32")
        for row, sequence in enumerate(id_lists):
            ids[row, longest - len(sequence) :] = sequence
            mask[row, longest - len(sequence) :] = 1
        return ids, mask

    def encode(self, sentences):
        """`(ids, padding_mask)` of a list of sentences, see `to_ids` and `pad`."""
        return self.pad([self.to_ids(sentence) for sentence in check_sentences(sentences)])

    def decode(self, ids, *, detokenize=True):
        """The sentences of int32 ids `(batch, length)` (each up to its first `</s>`, padding ignored);
        `detokenize=False`: as token lines with the BPE marks removed (fairseq's `--remove-bpe` output,
        Moses-tokenised and, with `lowercase`, lowercased)."""
        lines = (self.dictionary.decode(row) for row in np.atleast_2d(ids))
        return [self.detokenize(line) if detokenize else join_bpe(line) for line in lines]


def subword_nmt_codes(codes):
    """BPE codes as subword-nmt reads them. fastBPE's (`a b count` per line, no header) become
    `#version: 0.2` and the pairs: fastBPE merges in the codes' order as subword-nmt does and marks a
    word's end on its last symbol (`e</w>`), which is subword-nmt's format 0.2 (a file without the
    header is read as 0.1, whose `</w>` is a symbol of its own). subword-nmt's codes stay as they are."""
    lines = codes.rstrip("\n").split("\n")
    fields = [line.strip("\r\n ").split(" ") for line in lines]
    if lines[0].startswith("#version:") or all(len(f) != 3 for f in fields):
        return codes
    for number, (line, pair) in enumerate(zip(lines, fields), 1):
        if len(pair) != 3 or not pair[2].isdigit():
            raise OdezooError(
                f"BPE codes line {number} is {line!r:.100}, not fastBPE's `a b count` as other lines are: "
                "pass subword-nmt codes (`a b`) or fastBPE codes, one format throughout."
            )
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b, _ in fields)


def check_sentences(sentences):
    """`sentences` as a list of str, else raises saying what fits."""
    if not isinstance(sentences, str) and hasattr(sentences, "__iter__"):
        sentences = list(sentences)  # a generator is read once, here
    if isinstance(sentences, str) or not sentences or not all(isinstance(s, str) for s in sentences):
        raise OdezooError(
            "Expected a non-empty list of sentences (str). Received: "
            f"{sentences!r:.200}{' (wrap one sentence in a list)' if isinstance(sentences, str) else ''}"
        )
    return list(sentences)


def preset_tokenizer(model):
    """The `MacaronTokenizer` saved in the preset folder `model` was loaded from (`preset_folder`, set
    by `odezoo.load`), read once per folder; raises saying what to pass where there is none."""
    folder = model.preset_folder
    if folder is None or not (folder / TOKENIZER_FILE).is_file():
        where = "was built in code" if folder is None else f"comes from {folder}, without {TOKENIZER_FILE}"
        raise OdezooError(
            f"{model.name} {where}: there is no preset tokenizer. Pass tokenizer=MacaronTokenizer.load("
            "folder) (a folder a MacaronTokenizer was saved to) or MacaronTokenizer.from_files(dict_txt, "
            "bpe_codes)."
        )
    return _load_tokenizer(folder)


@lru_cache(maxsize=8)
def _load_tokenizer(folder):
    return MacaronTokenizer.load(folder)
