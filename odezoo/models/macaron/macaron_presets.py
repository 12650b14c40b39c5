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
}
