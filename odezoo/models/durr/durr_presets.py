"""DURR presets. `sha256` is that of the preset's `model.weights.h5`; the measured PSNR / SSIM and
steps live in its `metadata.json` (written by the recipe) and MODEL_CARDS.md."""

# The network of both presets: the default unit (≈1.8e5 parameters) and policy (≈1.0e5), grey images,
# 6 steps when called, at most 12 when the policy chooses.
NETWORK = {
    "channels": 1,
    "num_steps": 6,
    "max_steps": 12,
    "features": 64,
    "depth": 7,
    "policy_features": 16,
    "policy_depth": 4,
}

PRESETS = {
    "durr_denoise_gray": {
        "model": "DURR",
        "config": NETWORK,
        "description": "DURR blind Gaussian denoising (sigma 15-50), grey, trained on scikit-image photos.",
        "sha256": "12694c1d2e18c63165ef29128e17d75ef7dac6dced2c3f44cfa9e96d18580155",
        "dataset": "skimage_photos",
        "paper": "arXiv:1805.07709",
    },
    "durr_deblock_jpeg": {
        "model": "DURR",
        "config": NETWORK,
        "description": "DURR JPEG deblocking (quality 10-40), grey, trained on scikit-image photos.",
        "sha256": "0d667a594b1eeaa20dbc688bfa31c3b73cb6ac670ef52906496da560ca4bd157",
        "dataset": "skimage_photos",
        "paper": "arXiv:1805.07709",
    },
}
