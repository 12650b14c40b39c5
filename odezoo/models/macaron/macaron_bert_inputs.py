"""Macaron-BERT's inputs as the authors' BERT fork builds them, in NumPy: examples encoded as
`<cls> s1 </s> [s2 </s>]`, packed and padded, and BERT's masking of tokens for the masked-LM loss."""

import numpy as np

from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron_tokenizer import Dictionary

SEGMENT_PAD_ROW = 1  # fairseq's `Embedding(2, E, padding_idx=1)`: segment 1 (the first sentence) adds 0
BERT_SYMBOLS = {4: "<mask>", 5: "<cls>"}  # after fairseq's four specials (docs/papers.md#macaron-checkpoints)
MASK_ID, CLS_ID = 4, 5


def encode_examples(tokenizer, examples, max_positions):
    """The fork's input of each example (a tuple of one or two sentences): `<cls> s1 </s>` or
    `<cls> s1 </s> s2 </s>` in `tokenizer`'s BERT dictionary, at most `max_positions` tokens.

    A longer example loses tokens from the end of its longer sentence (of the second on a tie), one at
    a time (BERT's `_truncate_seq_pair`; how the fork truncates is NOT FOUND).

    Returns:
        `(token id lists, lengths of the first segment (<cls>, s1, </s>), each example's length in tokens
        before truncation)`: those longer than `max_positions` were truncated.
    """
    dictionary = tokenizer.dictionary
    found = {i: dictionary.symbols[i] if i < len(dictionary) else None for i in BERT_SYMBOLS}
    if found != BERT_SYMBOLS:
        raise OdezooError(
            f"A BERT dictionary holds {BERT_SYMBOLS} after fairseq's four specials; this tokenizer's "
            f"holds {found}. Use the tokenizer of a Macaron-BERT preset."
        )
    ids, firsts, lengths = [], [], []
    for example in examples:
        parts = [dictionary.encode_line(tokenizer.tokenize(s), append_eos=False).tolist() for s in example]
        budget = max_positions - 1 - len(parts)  # <cls> and one </s> per sentence
        if budget < len(parts):
            raise OdezooError(
                f"max_positions={max_positions} leaves no room for {len(parts)} sentence(s) after <cls> "
                "and </s>."
            )
        lengths.append(sum(map(len, parts)) + 1 + len(parts))
        while sum(map(len, parts)) > budget:
            max(reversed(parts), key=len).pop()  # the longer; on a tie, the second
        sequence = [CLS_ID, *parts[0], dictionary.EOS_ID]
        firsts.append(len(sequence))
        for part in parts[1:]:
            sequence += [*part, dictionary.EOS_ID]
        ids.append(sequence)
    return ids, firsts, lengths


def pack_inputs(ids, first_lengths, pad_id=1):
    """The model's inputs of token id lists (`encode_examples`), right-padded to the longest:
    `segment_ids` 1 over the first segment and the padding, 0 over the second sentence."""
    width = max(map(len, ids))
    token_ids = np.full((len(ids), width), pad_id, "int32")
    segment_ids = np.full((len(ids), width), SEGMENT_PAD_ROW, "int32")
    padding_mask = np.zeros((len(ids), width), "int32")
    for row, (sequence, first) in enumerate(zip(ids, first_lengths)):
        token_ids[row, : len(sequence)] = sequence
        segment_ids[row, first : len(sequence)] = 0
        padding_mask[row, : len(sequence)] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def pack_sentences(id_lists, length):
    """Sentences' token ids (no `</s>`) packed in order into sequences `<cls> s1 </s> s2 </s> ...` of at
    most `length` tokens (RoBERTa's FULL-SENTENCES, one segment); a sentence longer than `length - 2`
    tokens is cut to fit a sequence of its own."""
    if length < 3:
        raise OdezooError(f"A packed sequence holds <cls>, a token and </s>: length >= 3. Received: {length}")
    sequences, current = [], [CLS_ID]
    for ids in id_lists:
        ids = [*list(ids)[: length - 2], Dictionary.EOS_ID]
        if len(current) + len(ids) > length:
            sequences.append(current)
            current = [CLS_ID]
        current += ids
    if len(current) > 1:
        sequences.append(current)
    return sequences


def mask_tokens(token_ids, padding_mask, rng, *, vocabulary_size, rate=0.15):
    """BERT's masking of right-padded `token_ids` (fairseq's `MaskedLMDataset`): in each sequence
    `int(rate · n + u)` of its `n` maskable tokens (real tokens other than `<cls>` and `</s>`; `u`
    uniform in [0, 1)) are picked; 80 % of them become `<mask>`, 10 % a random ordinary token (ids from
    `<cls>` + 1 up), 10 % stay.

    Returns:
        `(masked token ids, labels: the original ids, weights: 1.0 at the picked positions, else 0)`.
    """
    maskable = (padding_mask == 1) & (token_ids != CLS_ID) & (token_ids != Dictionary.EOS_ID)
    weights = np.zeros(token_ids.shape, "float32")
    for row, positions in enumerate(maskable):
        candidates = np.flatnonzero(positions)
        count = min(int(rate * len(candidates) + rng.random()), len(candidates))
        weights[row, rng.choice(candidates, count, replace=False)] = 1.0
    picked = weights == 1.0
    draw = rng.random(token_ids.shape)
    masked = np.where(picked & (draw < 0.8), MASK_ID, token_ids)
    random_ids = rng.integers(CLS_ID + 1, vocabulary_size, token_ids.shape)
    masked = np.where(picked & (draw >= 0.8) & (draw < 0.9), random_ids, masked)
    return masked.astype("int32"), token_ids.astype("int32"), weights
