"""PDE-Net presets. `sha256` is that of the preset's `model.weights.h5`; the measured coefficient
and rollout errors live in its `metadata.json` (written by the recipe) and MODEL_CARDS.md."""

PRESETS = {
    "pde_net2_burgers2d": {
        "model": "PDENet2",
        "config": {
            "channels": ["u", "v"],
            "grid": 32,
            "dt": 0.01,
            "kernel_size": 5,
            "max_order": 2,
            "num_hidden": 5,
        },
        "description": "PDE-Net 2.0 that learned 2-D Burgers (nu = 0.05) from simulated trajectories.",
        "sha256": "7a9e0b8a24b214de6327cde6aa7425a5d2be33813d89739c823864c1bed43a9e",
        "dataset": "burgers2d",
        "paper": "arXiv:1812.04426",
    },
    "pde_net2_heat": {
        "model": "PDENet2",
        "config": {
            "channels": ["u"],
            "grid": 32,
            "dt": 0.01,
            "kernel_size": 5,
            "max_order": 2,
            "num_hidden": 5,
        },
        "description": "PDE-Net 2.0 that learned the heat equation (nu = 0.1) from simulated trajectories.",
        "sha256": "4303e99daf5403a171f74b7a8d8f8399397da7d7b930963ac0a0d837f9d06b01",
        "dataset": "heat",
        "paper": "arXiv:1812.04426",
    },
    "pde_net_linear_cd": {
        "model": "PDENet",
        "config": {"grid": 50, "dt": 0.015, "kernel_size": 5, "max_order": 2, "acc": 1, "mesh": 5},
        "description": "PDE-Net v1 that learned a variable-coefficient convection-diffusion equation.",
        "sha256": "5a60202d379b252c9eefa681510544544364de89df899f4de94bea69307aad94",
        "dataset": "linear_cd",
        "paper": "arXiv:1710.09668",
    },
}
