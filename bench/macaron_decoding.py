"""Macaron Net decoding speed: greedy tokens/s with the key/value cache (the compiled step that
`greedy_decode` and `beam_search` run) against recomputing the decoder on the whole prefix every step,
and beam search's tokens/s, on one random model in one process.

    python bench/macaron_decoding.py [--hidden-dim 256] [--tokens 50] [--batch 16] [--repeats 3]
        [--out bench/results/macaron_decoding_tf_cpu.json]

The defaults (3 layers, d = 256, vocabulary 8,000, batch 16) are the size at which the goal is judged:
on a tiny model the cache's fixed per-step cost dominates and the ratio says little.

All variants decode `--tokens` tokens per sentence (no `</s>` stops them) from the same encoder output:
- cache, compiled: `greedy_decode` (self-attention cache, cross-attention keys/values computed once;
  the whole loop is one compiled `ops.while_loop`, so no step returns to Python);
- cache, eager: the same loop calling `call_decoder_with_cache` eagerly (what compiling buys);
- no cache, compiled: every step runs the decoder on the whole prefix (fairseq without incremental
  state, which also projects every position to logits), compiled by the same `backend_compiled` helper
  with XLA, as the cached loop is (one compilation per prefix length, in the warm-up);
- beam search (`--beam`, compiled): counts `beam x batch x tokens` decoded tokens.
Each is warmed up once (tracing), then timed `--repeats` times, interleaved; the median is printed,
and whether the cache is >= 5x faster than no cache (the goal of issue 10).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from odezoo._compile import backend_compiled  # noqa: E402
from odezoo.models import MacaronTransformer  # noqa: E402


def variants(model, source, mask, tokens, beam):
    """`{name: (decode(), decoded tokens)}`."""
    batch = len(source)
    encoder_output = model.encode(source, mask)
    start = np.full((batch, 1), 2, "int32")

    def cached_eager():
        cache, token = model.init_cache(batch, tokens), start
        for index in range(tokens):
            logits, cache = model.call_decoder_with_cache(encoder_output, mask, token, cache, index)
            token = np.asarray(ops.argmax(logits[:, -1], axis=-1)).astype("int32")[:, None]

    full_step = backend_compiled(
        lambda prefix, cache: ops.argmax(
            model.call_decoder_with_cache(encoder_output, mask, prefix, cache, 0)[0][:, -1], axis=-1
        ),
        model.variables,
        xla=True,  # as greedy_decode's loop: the comparison is of the algorithms, not of the compilers
    )

    def no_cache():
        prefix = start
        for length in range(1, tokens + 1):
            token = np.asarray(full_step(prefix, model.init_cache(batch, length))).astype("int32")
            prefix = np.concatenate([prefix, token[:, None]], axis=1)

    return {
        "cache, compiled": (lambda: model.greedy_decode(source, mask, max_length=tokens, end_id=-1), batch),
        "cache, eager": (cached_eager, batch),
        "no cache, compiled": (no_cache, batch),
        f"beam {beam}, compiled": (
            lambda: model.beam_search(source, mask, beam=beam, max_len_b=tokens - 1, min_len=tokens),
            batch * beam,
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--source-length", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=50, help="tokens decoded per sentence")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = MacaronTransformer(
        vocabulary_size=args.vocabulary_size, num_layers=args.num_layers, hidden_dim=args.hidden_dim,
        num_heads=args.num_heads, intermediate_dim=4 * args.hidden_dim, max_positions=args.tokens + 1,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    source = rng.integers(4, args.vocabulary_size, (args.batch, args.source_length)).astype("int32")
    mask = np.ones_like(source)
    runs = variants(model, source, mask, args.tokens, args.beam)
    for decode, _ in runs.values():
        decode()  # trace
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (decode, _) in runs.items():
            start = time.perf_counter()
            decode()
            times[name].append(time.perf_counter() - start)
    print(
        f"backend {keras.config.backend()}, {os.cpu_count()} CPUs; model hidden_dim={args.hidden_dim}, "
        f"num_layers={args.num_layers}, vocabulary {args.vocabulary_size}, "
        f"{model.count_params():,} parameters; "
        f"batch {args.batch}, source {args.source_length} tokens, {args.tokens} tokens decoded; "
        f"median of {args.repeats}"
    )
    rates = {}
    for name, (_, rows) in runs.items():
        seconds = statistics.median(times[name])
        rates[name] = rows * args.tokens / seconds
        print(f"{name:>20}: {seconds * 1000:9.1f} ms  {rates[name]:10.0f} tokens/s")
    speedup = rates["cache, compiled"] / rates["no cache, compiled"]
    verdict = "meets" if speedup >= 5 else "misses"
    print(f"cache / no cache (compiled): {speedup:.1f}x ({verdict} the 5x goal)")
    if args.out:
        report = {
            "backend": keras.config.backend(), "cpus": os.cpu_count(), "settings": vars(args),
            "parameters": model.count_params(), "tokens_per_s": rates, "cache_speedup": speedup,
            "seconds": times,
        }  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
