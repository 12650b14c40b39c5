"""The models are written with keras.ops only: the published preset runs under JAX and matches
TensorFlow's golden outputs (tests/backend_check.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")


@pytest.mark.backend
def test_lm_resnet_under_jax():
    script = Path(__file__).resolve().parent / "backend_check.py"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '"backend": "jax"' in out.stdout
