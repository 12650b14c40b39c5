"""Export of a Macaron-BERT classifier: SavedModel, TFLite (builtin ops only) and ONNX, each run in its
own runtime on the text-classification task's samples (`<cls>`, one or two sentences, right padding)
and matching Keras' logits; the exact GELU reaches ONNX as `Erf` (TensorFlow's own lowering, `Erfc`, is
no ONNX op)."""

import json

import keras
import numpy as np
import pytest

from odezoo.export import FORMATS, export_preset, flex_ops
from odezoo.models import MacaronBert

pytestmark = pytest.mark.export

TINY = {"vocabulary_size": 40, "num_layers": 2, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
        "max_positions": 24, "num_classes": 3, "dropout": 0.0, "attention_dropout": 0.0}  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny classifier (3 classes) with weights ~ N(0, 0.5²): logits of order 1 that vary by input."""
    keras.utils.set_random_seed(0)
    model, rng = MacaronBert(**TINY), np.random.default_rng(0)
    model.set_weights([rng.normal(0.0, 0.5, w.shape) for w in model.get_weights()])
    folder = tmp_path_factory.mktemp("export") / "tiny_bert"
    return model.save_pretrained(folder, metadata={"preset": "tiny_bert"})


def test_samples_are_laid_out_as_the_forks_inputs(folder):
    import odezoo

    model = odezoo.load(folder)
    sample = model.task.sample_inputs(model, {})
    assert set(sample) == {"token_ids", "segment_ids", "padding_mask"}
    assert sample["token_ids"].shape == (8, 16)
    lengths = sample["padding_mask"].sum(1)
    assert (sample["token_ids"][:, 0] == 5).all() and len(set(lengths)) == 4  # <cls>; padded rows
    assert (sample["segment_ids"][1::2] == 0).any(1).all() and (sample["segment_ids"][::2] == 1).all()
    logits = np.asarray(model(sample))
    assert len(set(logits.argmax(-1))) >= 2  # the classes vary: top-1 agreement means something


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_matches_keras_in_its_runtime(folder, tmp_path, fmt):
    report = export_preset(str(folder), fmt, output_dir=tmp_path)
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] <= report["tolerance"] == 1e-4
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert manifest[f"tiny_bert/{fmt}"]["max_abs_diff"] == report["max_abs_diff"]
    if fmt == "tflite":
        assert flex_ops(report["path"]) == []
    if fmt == "onnx":
        import onnx

        ops = {node.op_type for node in onnx.load(report["path"]).graph.node}
        assert "Erf" in ops and "Erfc" not in ops
