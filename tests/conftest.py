import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def images():
    """Two 16x16 RGB images in [0, 1]."""
    return np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
