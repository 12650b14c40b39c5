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
    finalized = [[] for _ in range(batch_size)]

    def finalize(sentence, row, score, length):
        if len(finalized[sentence]) < beam:
            hypothesis = np.append(tokens[sentence, row, : length - 1], np.int32(eos_id))
            finalized[sentence].append((hypothesis, float(score) / length**lenpen))

    for index in range(max_length + 1):
        token_ids = tokens[:, :, index - 1] if index else np.full((batch_size, beam), eos_id, "int32")
        token_ids = token_ids.reshape(-1, 1)
        if index == max_length:  # eos forced
            eos_scores = scores + step(token_ids, index, order, only_eos)[0][:, 0].reshape(batch_size, beam)
            for sentence in range(batch_size):
                for row in np.argsort(-eos_scores[sentence], kind="stable"):
                    finalize(sentence, row, eos_scores[sentence, row], index + 1)
            break
        log_probs, ids = (x.reshape(batch_size, beam, -1) for x in step(token_ids, index, order, token_bias))
        if index == 0:
            candidate_scores, candidate_ids = log_probs[:, 0], ids[:, 0]
            candidate_rows = np.zeros_like(candidate_ids)
        else:
            totals = (scores[:, :, None] + log_probs).reshape(batch_size, -1)
            best = np.argsort(-totals, axis=1, kind="stable")[:, : 2 * beam]
            candidate_scores = np.take_along_axis(totals, best, 1)
            candidate_ids = np.take_along_axis(ids.reshape(batch_size, -1), best, 1)
            candidate_rows = best // log_probs.shape[2]
        is_eos = candidate_ids == eos_id
        if index >= min_len:
            for sentence, j in zip(*np.nonzero(is_eos[:, :beam])):
                finalize(sentence, candidate_rows[sentence, j], candidate_scores[sentence, j], index + 1)
            if all(len(hypotheses) == beam for hypotheses in finalized):
                break
        kept = np.argsort(is_eos, axis=1, kind="stable")[:, :beam]  # the first `beam` non-eos candidates
        rows = np.take_along_axis(candidate_rows, kept, 1)
        tokens = tokens[sentences, rows]
        tokens[:, :, index] = np.take_along_axis(candidate_ids, kept, 1)
        scores = np.take_along_axis(candidate_scores, kept, 1)
        order = (sentences * beam + rows).reshape(-1)
    return [sorted(hypotheses, key=lambda h: -h[1]) for hypotheses in finalized]
