"""Beam-search translation speed against the code users would otherwise run: odezoo's `beam_search`
against Hugging Face transformers' `generate(num_beams=5)`, on encoder–decoders of the same sizes, in
one process, interleaved.

    pip install transformers torch   # the bench's extra: pip install -e ".[bench]"
    python bench/macaron_decoding_peer.py [--preset macaron_dictionary_de_en] [--dataset dictionary]
        [--sentences 256] [--batch 64] [--beam 5] [--repeats 3] [--threads N] [--out bench/results/....json]

Both models are random (seeded) and have the sizes of `--preset`'s config (`macaron_dictionary_de_en`:
d = 128, 2 + 2 layers, 4 heads, FFN width 512 (Macaron's two half-FFNs per layer: the same
parameters and FLOPs), vocabulary 4,152, one embedding matrix for the source, the target and the
output). The peer is `MarianMTModel` (fairseq's Transformer as transformers has it: sinusoidal
positions, scaled and shared embeddings; post-norm, which costs the same). Both translate the same
sources — the first `--sentences` sentences of `--dataset`'s test set, tokenised by the preset's
tokenizer, sorted by length and cut into batches of `--batch` (as `odezoo eval` does) — under the same
rules and limits: beam `--beam`, length penalty 1, at most `int(1.2 * src_len + 10)` tokens before the
closing `</s>` (`src_len` the batch's longest source), `</s>` not as the first token, `<pad>` never,
stopping as soon as `--beam` hypotheses of a sentence are finished (fairseq's and transformers'
`early_stopping=True`). Random weights rarely pick `</s>`, so most searches run to the limit in both.

TensorFlow and PyTorch get the same `--threads` (intra- and inter-op). Each side is warmed up once
(tracing), then both are timed `--repeats` times, alternating which goes first; the medians are
printed, and the last line is odezoo's sentences/s over transformers' (`... ratio X.XX`).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="macaron_dictionary_de_en", help="its sizes, tokenizer, test set")
    parser.add_argument("--dataset", default="dictionary", help="whose test sentences are translated")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    import keras

    import odezoo
    from odezoo.models import MacaronTransformer
    from odezoo.models.macaron.macaron_tasks import translation_pairs

    preset = odezoo.load(args.preset)
    tokenizer = preset.preset_tokenizer()
    config = preset.get_config()
    keras.utils.set_random_seed(0)
    model = MacaronTransformer.from_config(config)  # random weights
    peer = marian(config)
    _, lines, _, _ = translation_pairs(tokenizer, args.dataset, limit=args.sentences)
    sources = sorted((tokenizer.dictionary.encode_line(line) for line in lines), key=len)
    batches = [sources[i : i + args.batch] for i in range(0, len(sources), args.batch)]
    limits = dict(beam=args.beam, lenpen=1.0, max_len_a=1.2, max_len_b=10)

    def odezoo_decode():  # the best hypotheses' lengths, </s> counted
        return [
            length
            for batch in batches
            for length in (model.beam_search(*tokenizer.pad(batch), **limits) != config["pad_id"]).sum(1)
        ]

    def peer_decode():
        lengths = []
        for batch in batches:
            ids = np.full((len(batch), max(map(len, batch))), config["pad_id"], "int64")
            for row, source in zip(ids, batch):
                row[: len(source)] = source
            with torch.inference_mode():
                tokens = peer.generate(
                    input_ids=torch.from_numpy(ids),
                    attention_mask=torch.from_numpy((ids != config["pad_id"]).astype("int64")),
                    num_beams=args.beam, length_penalty=1.0, early_stopping=True, do_sample=False,
                    max_new_tokens=int(1.2 * ids.shape[1] + 10) + 1, min_new_tokens=1,
                    suppress_tokens=[config["pad_id"]],
                )  # fmt: skip
            lengths += (tokens[:, 1:] != config["pad_id"]).sum(1).tolist()  # without the decoder's start
        return lengths

    runs = {"odezoo": odezoo_decode, "transformers": peer_decode}
    lengths = {name: float(np.mean(decode())) for name, decode in runs.items()}  # warm-up: tracing
    seconds = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name in list(runs)[:: 1 if repeat % 2 == 0 else -1]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    rates = {name: len(sources) / statistics.median(times) for name, times in seconds.items()}
    print(
        f"{args.preset}'s sizes (d = {config['hidden_dim']}, {config['num_layers']} + {config['num_layers']} "
        f"layers, {config['num_heads']} heads, FFN {config['intermediate_dim']}, vocabulary "
        f"{config['vocabulary_size']}), random weights; {len(sources)} sentences in batches of {args.batch}, "
        f"beam {args.beam}; {args.threads} threads, {os.cpu_count()} CPUs; median of {args.repeats}; "
        f"best translations' mean length (</s> counted): "
        + ", ".join(f"{name} {length:.1f}" for name, length in lengths.items())
    )
    for name, rate in rates.items():
        spread = ", ".join(f"{len(sources) / t:.1f}" for t in seconds[name])
        print(f"{name:>12}: {rate:7.1f} sentences/s ({spread})")
    ratio = rates["odezoo"] / rates["transformers"]
    print(f"odezoo beam_search / transformers generate(num_beams={args.beam}) sentences/s: ratio {ratio:.2f}")
    if args.out:
        report = {"settings": vars(args), "cpus": os.cpu_count(), "seconds": seconds,
                  "sentences_per_s": rates, "ratio": ratio, "mean_lengths": lengths}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def marian(config):
    """A random `MarianMTModel` of `config`'s sizes (a `MacaronTransformer` config), inference mode."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(0)
    peer_config = MarianConfig(
        vocab_size=config["vocabulary_size"], d_model=config["hidden_dim"],
        encoder_layers=config["num_layers"], decoder_layers=config["num_layers"],
        encoder_attention_heads=config["num_heads"], decoder_attention_heads=config["num_heads"],
        encoder_ffn_dim=config["intermediate_dim"], decoder_ffn_dim=config["intermediate_dim"],
        max_position_embeddings=config["max_positions"], activation_function="relu",
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
        share_encoder_decoder_embeddings=config["share_all_embeddings"], tie_word_embeddings=True,
        pad_token_id=config["pad_id"], eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None,
    )  # fmt: skip
    return MarianMTModel(peer_config).eval()


if __name__ == "__main__":
    main()
