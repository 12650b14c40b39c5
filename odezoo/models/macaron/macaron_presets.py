"""Macaron Net presets. `sha256` is that of the preset's `model.weights.h5`; metrics live in its
`metadata.json` (written by the recipe) and MODEL_CARDS.md."""

PRESETS = {}
