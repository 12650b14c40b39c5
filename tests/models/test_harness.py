"""The harness every model class passes (`odezoo.testing.check_model`): config round trip, `.keras`
save and load, `save_pretrained` / `from_pretrained`, compiled predict, one `train_on_batch`; and,
marked `backend`, the same outputs under Keras' JAX backend from the weights TensorFlow saved."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from odezoo.models import (
    DURR,
    LMResNet,
    MacaronBert,
    MacaronTransformer,
    MeanFieldResNet,
    PDENet,
    PDENet2,
    PreActResNet18,
    SmallCNN,
    WideResNet,
)
from odezoo.testing import check_model

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)
IMAGES_8 = RNG.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
PERIODIC_FIELD = np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))[None, :, None, None] * np.ones(
    (2, 16, 16, 1)
)
TOKENS = {  # keras-hub's seq2seq inputs: a left-padded source, a right-padded target
    "encoder_token_ids": np.array([[1, 1, 5, 6, 2], [7, 8, 9, 4, 2]], "int32"),
    "encoder_padding_mask": np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], "int32"),
    "decoder_token_ids": np.array([[2, 5, 6, 1], [2, 7, 8, 9]], "int32"),
    "decoder_padding_mask": np.array([[1, 1, 1, 0], [1, 1, 1, 1]], "int32"),
}
BERT = {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16, "max_positions": 8}
BERT_TOKENS = {  # keras-hub's BERT inputs, right-padded
    "token_ids": np.array([[5, 6, 2, 1], [5, 7, 8, 2]], "int32"),
    "segment_ids": np.array([[1, 1, 1, 0], [1, 1, 0, 0]], "int32"),
    "padding_mask": np.array([[1, 1, 1, 0], [1, 1, 1, 1]], "int32"),
}
# (class, constructor arguments, inputs (an array or a dict by input name), output shape): tiny members
# of every family
MODELS = {
    "LMResNet": (LMResNet, {"depth": 8, "width": 2, "num_classes": 3, "image_shape": (8, 8, 3)},
                 IMAGES_8, (2, 3)),
    "LMResNet-rk4": (LMResNet, {"depth": 14, "width": 2, "num_classes": 3, "image_shape": (8, 8, 3),
                                "scheme": "rk4"}, IMAGES_8, (2, 3)),
    "SmallCNN": (SmallCNN, {"num_classes": 3, "image_shape": (28, 28, 1)},
                 RNG.uniform(0, 1, (2, 28, 28, 1)), (2, 3)),
    "PreActResNet18": (PreActResNet18, {"num_classes": 3, "image_shape": (8, 8, 3)}, IMAGES_8, (2, 3)),
    "WideResNet": (WideResNet, {"depth": 10, "widen_factor": 1, "num_classes": 3, "image_shape": (8, 8, 3)},
                   IMAGES_8, (2, 3)),
    "MeanFieldResNet": (MeanFieldResNet, {"num_blocks": 3, "width": 4, "channels": 5, "num_classes": 3,
                                          "image_shape": (8, 8, 3), "shuffle_blocks": True},
                        IMAGES_8, (2, 3)),
    "PDENet2": (PDENet2, {"channels": ["u"], "grid": 16, "num_hidden": 2}, PERIODIC_FIELD, (2, 16, 16, 1)),
    "PDENet": (PDENet, {"grid": 16, "max_order": 2, "mesh": 4}, PERIODIC_FIELD, (2, 16, 16, 1)),
    "DURR": (DURR, {"num_steps": 2, "features": 4, "depth": 3, "policy_features": 2, "policy_depth": 2},
             RNG.uniform(0, 1, (2, 16, 12, 1)), (2, 16, 12, 1)),
    "MacaronTransformer": (MacaronTransformer, {"vocabulary_size": 12, "num_layers": 1, "hidden_dim": 8,
                                                "num_heads": 2, "intermediate_dim": 16, "max_positions": 8},
                           TOKENS, (2, 4, 12)),
    "MacaronBert": (MacaronBert, {**BERT, "vocabulary_size": 12}, BERT_TOKENS, (2, 4, 12)),
    "MacaronBert-classifier": (MacaronBert, {**BERT, "vocabulary_size": 12, "num_classes": 3}, BERT_TOKENS,
                               (2, 3)),
}  # fmt: skip
PORTABLE = sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_class_passes_the_harness(name, tmp_path):
    cls, kwargs, inputs, shape = MODELS[name]
    dtype = "float64" if name.startswith("PDE") else "float32"
    inputs = inputs if isinstance(inputs, dict) else np.asarray(inputs, dtype)
    model = check_model(cls, kwargs, inputs, shape, tmp_path)
    assert model.task.name == model.TASK and json.loads(json.dumps(model.get_config()))


@pytest.mark.backend
@pytest.mark.parametrize("name", PORTABLE)
def test_jax_backend_reproduces_tensorflow(name, tmp_path):
    """The preset folder TensorFlow wrote gives the same outputs under KERAS_BACKEND=jax."""
    cls, kwargs, inputs, _ = MODELS[name]
    model = cls(**kwargs)
    inputs = inputs if isinstance(inputs, dict) else np.asarray(inputs, model.inputs[0].dtype)
    folder = model.save_pretrained(tmp_path / "preset")
    np.savez(tmp_path / "inputs.npz", **(inputs if isinstance(inputs, dict) else {"x": inputs}))
    code = (
        "import sys, numpy as np, jax; jax.config.update('jax_enable_x64', True); "
        "jax.config.update('jax_default_matmul_precision', 'highest'); import odezoo; "
        f"m = odezoo.load({str(folder)!r}); x = np.load({str(tmp_path / 'inputs.npz')!r}); "
        "x = x['x'] if x.files == ['x'] else dict(x); "
        f"np.save({str(tmp_path / 'jax.npy')!r}, np.asarray(m(x, training=False)))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    expected = np.asarray(model(inputs, training=False))
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), expected, rtol=1e-4, atol=1e-5)
