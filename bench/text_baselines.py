"""The trivial baselines the small Macaron-BERT presets' cards compare with: for masked LM, always
predict the most frequent maskable token of the training text, scored on exactly the held-out positions
`odezoo eval PRESET` masks (`evaluate_masked_lm`: the same packing, `mask_tokens` with seed 0); for the
subject tags, always predict the most frequent training class, scored on valid and test.

    python bench/text_baselines.py [--preset macaron_bert_small_dictionary_en] [--out FILE.json]
"""

import argparse
import json

import numpy as np

import odezoo
from odezoo.data.glue import glue_examples, glue_task
from odezoo.models.macaron.macaron_bert import CLS_ID, mask_tokens, pack_inputs, pack_sentences
from odezoo.models.macaron.macaron_tokenizer import Dictionary
from odezoo.tasks.text import masked_lm_text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="macaron_bert_small_dictionary_en")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    model = odezoo.load(args.preset)
    tokenizer = model.preset_tokenizer()

    def encode(split):
        return [
            tokenizer.dictionary.encode_line(tokenizer.tokenize(t), append_eos=False)
            for t in masked_lm_text("dictionary_en", split)
        ]

    counts = np.bincount(np.concatenate([np.asarray(i, "int64") for i in encode("train")]),
                         minlength=model.vocabulary_size)  # fmt: skip
    counts[[CLS_ID, Dictionary.EOS_ID, Dictionary.PAD_ID]] = 0  # never masked
    top = int(counts.argmax())
    sequences = pack_sentences(encode("valid"), model.max_positions)
    rng = np.random.default_rng(0)
    hits = total = 0.0
    for start in range(0, len(sequences), 32):  # evaluate_masked_lm's batches: the same random draws
        batch = sequences[start : start + 32]
        inputs = pack_inputs(batch, list(map(len, batch)), tokenizer.dictionary.PAD_ID)
        _, labels, weights = mask_tokens(
            inputs["token_ids"], inputs["padding_mask"], rng, vocabulary_size=model.vocabulary_size
        )
        hits += float(((labels == top) * weights).sum())
        total += float(weights.sum())
    report = {
        "preset": args.preset,
        "token": tokenizer.dictionary.symbols[top],
        "train_share": float(counts[top] / counts.sum()),
        "masked_tokens": int(total),
        "unigram_masked_accuracy": hits / total,
    }
    tags = glue_task("dictionary_tags")
    majority = int(np.bincount(glue_examples(tags, "train")[1]).argmax())
    report["tags_majority_class"] = majority
    for split in ("valid", "test"):
        labels = glue_examples(tags, split)[1]
        report[f"tags_majority_accuracy_{split}"] = float(np.mean(labels == majority))
    print(json.dumps(report, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
