"""fairseq's beam search (`SequenceGenerator` with `BeamSearch`, fairseq 0.6.0 as vendored by
macaron-net @3a84e7a under `translation/fairseq/`) as compiled `ops.while_loop`s over any cached decoder
step: fixed-shape beams, the cache reordered in the graph; no return to Python per token, only where
half of the batch is done or the room for tokens is full."""

import numpy as np
from keras import ops


def fairseq_beam_search(search, extras, caches, *, batch_size, beam, capacity, max_length, eos_id, pad_id):
    """fairseq's beam search over `batch_size` sentences, `beam` rows each (sentence-major), as a few
    compiled loops: `search(*extras, state)` (`beam_search_loop` compiled) runs until half of its
    sentences are done or its `capacity` positions are full. Then, as fairseq drops finished
    sentences from its batch, the sentences still searching go on alone (with twice the room where it
    was full), until every one has `beam` finished hypotheses (at the latest at `max_length`, where
    eos is forced).

    Args:
        search: `search(*extras, state) -> state`.
        extras: tensors with a row per hypothesis (the encoder's cross-attention keys and values, its
            padding mask), kept for the sentences still searching.
        caches: the decoder's empty self-attention caches, per layer `(batch_size * beam, 2, capacity,
            ...)`, position on axis 2.
        batch_size, beam: sentences, and hypotheses kept per sentence.
        capacity: the positions of the first loop (<= max_length + 1).
        max_length: the most tokens before the closing eos.
        eos_id, pad_id: fairseq's `</s>` (the first decoder input, the end of a hypothesis) and `<pad>`.

    Returns:
        `(tokens, scores, lengths)`, NumPy: each sentence's `beam` finished hypotheses in the order they
        ended, int32 `(batch_size, beam, max_length + 1)` (ending with eos, `pad_id` after it), their
        summed log-probabilities and their lengths (eos counted).
    """
    tokens = np.full((batch_size, beam, max_length + 1), pad_id, "int32")
    scores, lengths = np.zeros((batch_size, beam), "float32"), np.zeros((batch_size, beam), "int32")
    sentences = np.arange(batch_size)  # the batch's sentences still searching
    state = (
        np.int32(0),  # the step: the position the decoder writes
        np.full((batch_size * beam, 1), eos_id, "int32"),  # the decoder's input, the last token of each row
        np.zeros((batch_size, beam), "float32"),  # live hypotheses' summed log-probabilities
        np.full((batch_size, beam, capacity), pad_id, "int32"),  # live hypotheses' tokens
        tuple(caches),
        np.full((batch_size, beam, capacity), pad_id, "int32"),  # finished hypotheses, ending with eos
        np.zeros((batch_size, beam), "float32"),  # their summed log-probabilities
        np.zeros((batch_size, beam), "int32"),  # their lengths, eos counted
        np.zeros((batch_size,), "int32"),  # finished hypotheses per sentence
    )
    while True:
        state = search(*extras, state)
        done = np.asarray(state[8]) == beam
        tokens[sentences[done], :, :capacity] = np.asarray(state[5])[done]
        scores[sentences[done]], lengths[sentences[done]] = (np.asarray(x)[done] for x in state[6:8])
        if done.all():
            return tokens, scores, lengths
        sentences = sentences[~done]
        rows = np.flatnonzero(np.repeat(~done, beam))
        extras = tuple(ops.take(x, rows, axis=0) for x in extras)
        more = min(max_length + 1, 2 * capacity) - capacity if int(state[0]) == capacity else 0
        state = _continued(state, np.flatnonzero(~done), rows, more, pad_id)
        capacity += more


def _continued(state, sentences, rows, more, pad_id):
    """`state` for its `sentences` only (`rows` theirs), with room for `more` positions (the tokens
    padded with `pad_id`, the caches with 0)."""
    index, last, scores, tokens, caches, finished, finished_scores, finished_lengths, counts = state

    def longer(x, value):  # kept sentences or rows, `more` positions added on axis 2
        padding = [(0, 0)] * len(x.shape)
        padding[2] = (0, more)
        return ops.pad(x, padding, constant_values=value)

    kept = lambda x: ops.take(x, sentences, axis=0)  # noqa: E731
    return (
        index,
        ops.take(last, rows, axis=0),
        kept(scores),
        longer(kept(tokens), pad_id),
        tuple(longer(ops.take(cache, rows, axis=0), 0) for cache in caches),
        longer(kept(finished), pad_id),
        kept(finished_scores),
        kept(finished_lengths),
        kept(counts),
    )


def beam_search_loop(decode, state, token_bias, min_len, max_length, eos_id, *, beam, vocabulary_size):
    """fairseq's beam search (the rules are listed in `MacaronTransformer.beam_search`) as one
    `ops.while_loop` from `state` (see `fairseq_beam_search`; every sentence in it still searching)
    until half of its sentences have `beam` finished hypotheses (all, for one) or the state's positions
    are full.

    Args:
        decode: `decode(token_ids, index, caches) -> (logits, caches)`: the decoder on `token_ids`
            `(rows, 1)` at position `index`, rows sentence-major (`beam` per sentence).
        state: the loop variables, see `fairseq_beam_search`.
        token_bias: `(vocabulary_size,)` added to every step's log-probabilities: -inf at `pad`,
            `-unk_penalty` at `unk`, 0 elsewhere.
        min_len: the first step at which eos may finish a hypothesis.
        max_length: the most tokens before the closing eos; at that step eos is forced.
        eos_id: fairseq's `</s>`, the first decoder input and the end of a hypothesis.
        beam, vocabulary_size: Python integers (shapes).

    Returns:
        The state after the last step run.
    """
    token_bias = ops.convert_to_tensor(token_bias, "float32")
    eos_id = ops.convert_to_tensor(eos_id, "int32")
    batch_size, capacity = ops.shape(state[3])[0], ops.shape(state[3])[2]
    positions = ops.arange(capacity)[None, None, :]
    later_beams = (ops.arange(beam) > 0)[None, :, None]
    candidates = 2 * beam

    def running(index, last, scores, tokens, caches, finished, finished_scores, finished_lengths, counts):
        halved = 2 * ops.sum(ops.cast(counts < beam, "int32")) <= batch_size  # then go on without the done
        return ops.logical_and(index < capacity, ops.logical_not(halved))

    def step(index, last, scores, tokens, caches, finished, finished_scores, finished_lengths, counts):
        logits, caches = decode(last, index, caches)
        log_probs = ops.log_softmax(ops.cast(logits[:, -1], "float32"), axis=-1)
        log_probs = ops.reshape(log_probs, (batch_size, beam, vocabulary_size))
        # `BeamSearch.step`: the best `2 * beam` of all continuations; step 0 expands the first beam only
        totals = ops.where(
            ops.logical_and(index == 0, later_beams), -np.inf, scores[:, :, None] + (log_probs + token_bias)
        )
        candidate_scores, flat = ops.top_k(ops.reshape(totals, (batch_size, -1)), candidates)
        candidate_rows, candidate_ids = flat // vocabulary_size, ops.cast(flat % vocabulary_size, "int32")
        is_eos = candidate_ids == eos_id
        # Hypotheses ending here: eos among the first `beam` candidates, or, at the maximum length, every
        # live one (eos forced, best first; its log-probability without `token_bias`)
        forced = index == max_length
        forced_scores, forced_rows = ops.top_k(scores + ops.take(log_probs, eos_id, axis=2), beam)
        closed = ops.where(positions == index, eos_id, tokens)
        finished, finished_scores, finished_lengths, counts = _finish(
            (finished, finished_scores, finished_lengths, counts),
            _rows(closed, ops.where(forced, forced_rows, candidate_rows[:, :beam])),
            ops.where(forced, forced_scores, candidate_scores[:, :beam]),
            ops.logical_or(forced, ops.logical_and(is_eos[:, :beam], index >= min_len)),
            index + 1,
            beam,
        )
        # The next beams: the first `beam` candidates that are not eos (there are at most `beam` eos)
        rank = ops.cast(is_eos, "float32") * candidates + ops.cast(ops.arange(candidates), "float32")
        kept = ops.top_k(-rank, beam)[1]
        rows = ops.take_along_axis(candidate_rows, kept, axis=1)
        ids = ops.take_along_axis(candidate_ids, kept, axis=1)
        tokens = ops.where(positions == index, ids[:, :, None], _rows(tokens, rows))
        order = ops.reshape(ops.arange(batch_size)[:, None] * beam + ops.cast(rows, "int32"), (-1,))
        caches = tuple(ops.take(cache, order, axis=0) for cache in caches)
        scores = ops.take_along_axis(candidate_scores, kept, axis=1)
        return (index + 1, ops.reshape(ids, (-1, 1)), scores, tokens, caches, finished, finished_scores,
                finished_lengths, counts)  # fmt: skip

    return ops.while_loop(running, step, state)


def _rows(x, rows):
    """`x[sentence, rows[sentence, j]]` for `x` `(batch, beam, length)`, `rows` `(batch, n)`."""
    return ops.take_along_axis(x, ops.expand_dims(rows, 2), axis=1)


def _finish(finished_state, hypotheses, scores, ending, length, beam):
    """fairseq's `finalize_hypos`: appends `hypotheses[:, j]` (`(batch, n, capacity)`, ending with eos at
    `length - 1`; summed log-probabilities `scores`) where `ending[:, j]`, in order of `j`, to each
    sentence's finished ones while it has fewer than `beam`."""
    finished, finished_scores, finished_lengths, counts = finished_state
    ending = ops.cast(ending, "int32")
    slots = counts[:, None] + ops.cumsum(ending, axis=1) - 1  # (batch, n): the slot each would take
    taken = ops.logical_and((ending > 0)[:, :, None], slots[:, :, None] == ops.arange(beam))  # (b, n, slot)
    filled = ops.any(taken, axis=1)
    source = ops.argmax(ops.cast(taken, "int32"), axis=1)  # (batch, slot): the hypothesis it takes
    finished = ops.where(filled[:, :, None], _rows(hypotheses, source), finished)
    finished_scores = ops.where(filled, ops.take_along_axis(scores, source, axis=1), finished_scores)
    finished_lengths = ops.where(filled, length, finished_lengths)
    return finished, finished_scores, finished_lengths, ops.minimum(counts + ops.sum(ending, axis=1), beam)


def ranked_hypotheses(tokens, scores, lengths, lenpen, n_best):
    """The finished hypotheses of `fairseq_beam_search`, normalised (`score / length ** lenpen`, in
    float64) and sorted best first (a stable sort), the `n_best or 1` best cut to the
    longest: `n_best=None`: int32 `(batch, length)`, the best ones; otherwise `(tokens, scores)`, int32
    `(batch, n_best, length)` (`pad_id` after eos) and float32 `(batch, n_best)`."""
    normalised = scores.astype("float64") / lengths.astype("float64") ** lenpen
    best = np.argsort(-normalised, axis=1, kind="stable")[:, : n_best or 1]
    longest = np.take_along_axis(lengths, best, 1).max()
    tokens = np.take_along_axis(tokens, best[:, :, None], 1)[:, :, :longest]
    if n_best is None:
        return tokens[:, 0]
    return tokens, np.take_along_axis(normalised, best, 1).astype("float32")
