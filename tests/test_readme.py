"""The README's Python examples do what their comments say (run as written, then their claims checked)."""

import re
from pathlib import Path

import numpy as np

from odezoo.tasks.image_classification import bundled_sample

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _block(containing):
    """The README's one ```python block that contains `containing`."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if containing in b]
    assert len(blocks) == 1, f"{len(blocks)} README python blocks contain {containing!r}"
    return blocks[0]


def test_mean_field_operations_return_new_models():
    namespace = {}
    exec(_block("model.reorder_blocks("), namespace)  # noqa: S102 - our own README
    model = namespace["model"]
    x, _ = bundled_sample(16)
    before = np.asarray(model(x))
    for name in ("reversed_model", "deeper", "wider"):
        assert namespace[name] is not model, name
    np.testing.assert_array_equal(np.asarray(model(x)), before)  # "leaves `model` as it is"
    assert namespace["deeper"].num_blocks == 2 * model.num_blocks
    np.testing.assert_allclose(
        np.asarray(namespace["wider"](x)), before, atol=1e-4
    )  # "exactly the same function"
    assert not np.allclose(np.asarray(namespace["reversed_model"](x)), before, atol=1e-4)  # a different order
