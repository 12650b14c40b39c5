"""fairseq's beam search (`SequenceGenerator` with `BeamSearch`, fairseq 0.6.0 as vendored by
macaron-net @3a84e7a under `translation/fairseq/`), written over any decoder step; NumPy bookkeeping."""

import numpy as np


def fairseq_beam_search(step, *, batch_size, beam, lenpen, max_length, min_len, eos_id, token_bias):
    """fairseq's beam search over `batch_size` sentences, `beam` rows each (sentence-major); the rules
    are listed in `MacaronTransformer.beam_search`.

    Args:
        step: `step(token_ids, index, order, token_bias) -> (log_probs, ids)`: reorders the decoder's
            cache to the rows `order` `(rows,)`, runs it on `token_ids` `(rows, 1)` at position
            `index`, and returns for each row the `2 * beam` largest of `log p + token_bias` and
            their token ids, best first (ties: lower id first), as NumPy arrays.
        batch_size, beam: sentences, and hypotheses kept per sentence.
        lenpen: the length penalty exponent.
        max_length: the most tokens before the closing eos.
        min_len: the first step at which eos may finish a hypothesis.
        eos_id: fairseq's `</s>`, the first decoder input and the end of a hypothesis.
        token_bias: `(vocabulary_size,)` added to every step's log-probabilities: -inf at `pad`,
            `-unk_penalty` at `unk`, 0 elsewhere.

    Returns:
        Per sentence, its `beam` finished hypotheses `(tokens, score)` best first: `tokens` int32
        ending with `eos_id` (the leading one left out), `score` the normalised score.
    """
    only_eos = np.full_like(token_bias, -np.inf)
    only_eos[eos_id] = 0.0
    sentences = np.arange(batch_size)[:, None]
    tokens = np.zeros((batch_size, beam, max_length), "int32")
    scores = np.zeros((batch_size, beam), "float32")
    order = np.arange(batch_size * beam)
    finished = _Finished(batch_size, beam, lenpen, eos_id)
    for index in range(max_length + 1):
        token_ids = tokens[:, :, index - 1] if index else np.full((batch_size, beam), eos_id, "int32")
        token_ids = token_ids.reshape(-1, 1)
        if index == max_length:  # eos forced
            eos_scores = scores + step(token_ids, index, order, only_eos)[0][:, 0].reshape(batch_size, beam)
            finished.add_forced(tokens, eos_scores, index + 1)
            break
        log_probs, ids = (x.reshape(batch_size, beam, -1) for x in step(token_ids, index, order, token_bias))
        candidate_scores, candidate_ids, candidate_rows = _candidates(scores, log_probs, ids, index, beam)
        is_eos = candidate_ids == eos_id
        if index >= min_len:
            for sentence, j in zip(*np.nonzero(is_eos[:, :beam])):
                finished.add(
                    tokens, sentence, candidate_rows[sentence, j], candidate_scores[sentence, j], index + 1
                )
            if finished.full():
                break
        kept = np.argsort(is_eos, axis=1, kind="stable")[:, :beam]  # the first `beam` non-eos candidates
        rows = np.take_along_axis(candidate_rows, kept, 1)
        tokens = tokens[sentences, rows]
        tokens[:, :, index] = np.take_along_axis(candidate_ids, kept, 1)
        scores = np.take_along_axis(candidate_scores, kept, 1)
        order = (sentences * beam + rows).reshape(-1)
    return finished.ranked()


def _candidates(scores, log_probs, ids, index, beam):
    """The `2 * beam` best continuations of each sentence, best first (`BeamSearch.step`), from the
    live `scores` `(batch, beam)` and the step's `log_probs`, `ids` `(batch, beam, 2 * beam)`: their
    `(scores, token ids, beam rows)`, each `(batch, 2 * beam)`. Step 0 expands the first beam only."""
    if index == 0:
        return log_probs[:, 0], ids[:, 0], np.zeros_like(ids[:, 0])
    batch_size = len(scores)
    totals = (scores[:, :, None] + log_probs).reshape(batch_size, -1)
    best = np.argsort(-totals, axis=1, kind="stable")[:, : 2 * beam]
    candidate_scores = np.take_along_axis(totals, best, 1)
    candidate_ids = np.take_along_axis(ids.reshape(batch_size, -1), best, 1)
    return candidate_scores, candidate_ids, best // log_probs.shape[2]


class _Finished:
    """Each sentence's finished hypotheses (fairseq's `finalize_hypos`): at most `beam`, in the order
    they end, with the normalised score `score / length ** lenpen`."""

    def __init__(self, batch_size, beam, lenpen, eos_id):
        self.beam, self.lenpen, self.eos_id = beam, lenpen, eos_id
        self.hypotheses = [[] for _ in range(batch_size)]

    def add(self, tokens, sentence, row, score, length):
        """Ends the hypothesis `tokens[sentence, row]` with eos at `length` (eos counted) and the summed
        log-probability `score`, unless the sentence has `beam` finished already."""
        if len(self.hypotheses[sentence]) < self.beam:
            hypothesis = np.append(tokens[sentence, row, : length - 1], np.int32(self.eos_id))
            self.hypotheses[sentence].append((hypothesis, float(score) / length**self.lenpen))

    def add_forced(self, tokens, eos_scores, length):
        """At the maximum length: ends every sentence's live hypotheses, best `eos_scores` first."""
        for sentence, sentence_scores in enumerate(eos_scores):
            for row in np.argsort(-sentence_scores, kind="stable"):
                self.add(tokens, sentence, row, sentence_scores[row], length)

    def full(self):
        """Whether every sentence has `beam` finished hypotheses (fairseq's early stop)."""
        return all(len(hypotheses) == self.beam for hypotheses in self.hypotheses)

    def ranked(self):
        """Per sentence, its finished `(tokens, score)` best first (a stable sort)."""
        return [sorted(hypotheses, key=lambda h: -h[1]) for hypotheses in self.hypotheses]


def padded_hypotheses(finalized, n_best, pad_id):
    """The `n_best or 1` best of each sentence's `finalized` hypotheses (`fairseq_beam_search`'s output)
    padded with `pad_id`: `n_best=None`: int32 `(batch, length)`, the best ones; otherwise `(tokens,
    scores)`, int32 `(batch, n_best, length)` and float32 `(batch, n_best)`."""
    kept = [hypotheses[: n_best or 1] for hypotheses in finalized]
    length = max(len(hypothesis) for hypotheses in kept for hypothesis, _ in hypotheses)
    tokens = np.full((len(kept), len(kept[0]), length), pad_id, "int32")
    for sentence, hypotheses in enumerate(kept):
        for i, (hypothesis, _) in enumerate(hypotheses):
            tokens[sentence, i, : len(hypothesis)] = hypothesis
    if n_best is None:
        return tokens[:, 0]
    return tokens, np.array([[score for _, score in hypotheses] for hypotheses in kept], "float32")
