"""Macaron Net presets. `sha256` is that of the preset's `model.weights.h5`; metrics live in its
`metadata.json` (written by the recipe) and MODEL_CARDS.md."""

# The architecture of the two dictionary presets (recipe `macaron_dictionary_de_en`): equal parameters
# up to the 3d per layer of Macaron's second FFN bias and LayerNorm.
DICTIONARY_NETWORK = {
    "vocabulary_size": 4152,
    "num_layers": 2,
    "hidden_dim": 128,
    "num_heads": 4,
    "intermediate_dim": 512,
    "normalize_before": True,
    "share_all_embeddings": True,
}

# The small encoders of recipes `macaron_bert_small_dictionary_en` / `bert_small_dictionary_en`: equal
# parameters up to d per layer (Macaron's second FFN output bias; the LayerNorms are not affine).
BERT_SMALL_NETWORK = {
    "vocabulary_size": 4138,
    "num_layers": 2,
    "hidden_dim": 128,
    "num_heads": 4,
    "intermediate_dim": 512,
    "max_positions": 64,
}

PRESETS = {
    "macaron_dictionary_de_en": {
        "model": "MacaronTransformer",
        "config": {**DICTIONARY_NETWORK, "scheme": "strang"},
        "description": "Macaron Net (Strang splitting, 2+2 layers, d = 128), German→English phrases.",
        "sha256": "57cdd5f8a5ba34295aaf411871b70ee64c8e8a3d7b481c3151e3c20e9b667324",
        "dataset": "dictionary",
        "license": "gpl-2.0",
        "paper": "arXiv:1906.02762",
    },
    "transformer_dictionary_de_en": {
        "model": "MacaronTransformer",
        "config": {**DICTIONARY_NETWORK, "scheme": "lie_trotter"},
        "description": "The Transformer baseline (Lie–Trotter), same size, data and budget as Macaron.",
        "sha256": "fed56058e947bd669c62775f67480c8f5dfe92ac0fe6c8aae00e46de4a036610",
        "dataset": "dictionary",
        "license": "gpl-2.0",
        "paper": "arXiv:1906.02762",
    },
    "macaron_bert_small_dictionary_en": {
        "model": "MacaronBert",
        "config": {**BERT_SMALL_NETWORK, "scheme": "strang"},
        "description": "Macaron-BERT (Strang splitting, 2 layers, d = 128), masked-LM on dictionary English.",
        "sha256": "5cd77bf6c8de6ba8992cb9eff2661cdb156c0f97a381f43d0f30194b00682dfd",
        "dataset": "dictionary_en",
        "license": "gpl-2.0",
        "paper": "arXiv:1906.02762",
    },
    "bert_small_dictionary_en": {
        "model": "MacaronBert",
        "config": {**BERT_SMALL_NETWORK, "scheme": "lie_trotter"},
        "description": "The BERT baseline (Lie–Trotter), same size, text and budget as Macaron-BERT.",
        "sha256": "6689909e4a65b421d7355e7c5681c44b49aff60a0fe76a76f5bd702b4ac0ac30",
        "dataset": "dictionary_en",
        "license": "gpl-2.0",
        "paper": "arXiv:1906.02762",
    },
    "macaron_bert_small_dictionary_en_dictionary_tags": {
        "model": "MacaronBert",
        "config": {**BERT_SMALL_NETWORK, "scheme": "strang", "num_classes": 12},
        "description": "Macaron-BERT small fine-tuned to tag dictionary entries with one of 12 subjects.",
        "sha256": "260110a2b5e0a2c8e2f6c4178905ea3d808bcc2a8620fcf6b37a674cfc6d91c3",
        "dataset": "dictionary_tags",
        "license": "gpl-2.0",
        "paper": "arXiv:1906.02762",
    },
    "bert_small_dictionary_en_dictionary_tags": {
        "model": "MacaronBert",
        "config": {**BERT_SMALL_NETWORK, "scheme": "lie_trotter", "num_classes": 12},
        "description": "BERT small fine-tuned on the same subject tags: the baseline of Macaron-BERT.",
        "sha256": "f668484804567ae5ccc5377137ac035aedf7c22764297f635aa9f40316b7c762",
        "dataset": "dictionary_tags",
        "license": "gpl-2.0",
        "paper": "arXiv:1906.02762",
    },
}
