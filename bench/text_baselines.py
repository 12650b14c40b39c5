"""The trivial baselines the small Macaron-BERT presets' cards compare with: for masked LM, always
predict the most frequent maskable token of the training text, scored on exactly the held-out positions
`odezoo eval PRESET` masks (`masked_lm_batches`, the batches `evaluate_masked_lm` scores); for the
subject tags, always predict the most frequent training class, scored on valid and test.

    python bench/text_baselines.py [--preset macaron_bert_small_dictionary_en] [--out FILE.json]
"""

import argparse
import json

import numpy as np

import odezoo
from odezoo.data.glue import glue_examples, glue_task
from odezoo.models.macaron.macaron_bert_inputs import CLS_ID
from odezoo.models.macaron.macaron_tasks import masked_lm_batches, masked_lm_text
from odezoo.models.macaron.macaron_tokenizer import Dictionary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="macaron_bert_small_dictionary_en")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    model = odezoo.load(args.preset)
    tokenizer = model.preset_tokenizer()

    train = [
        tokenizer.dictionary.encode_line(tokenizer.tokenize(t), append_eos=False)
        for t in masked_lm_text("dictionary_en", "train")
    ]
    tokens = np.concatenate([np.asarray(i, "int64") for i in train])
    counts = np.bincount(tokens, minlength=model.vocabulary_size)
    counts[[CLS_ID, Dictionary.EOS_ID, Dictionary.PAD_ID]] = 0  # never masked
    top = int(counts.argmax())
    hits = total = 0.0
    for _, labels, weights in masked_lm_batches(model, tokenizer, masked_lm_text("dictionary_en", "valid")):
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
