"""Export of a translation model as parts (encoder, one cached decoder step, the greedy loop): each
SavedModel matches Keras, and greedy decoding driven by the exported parts gives `greedy_decode`'s tokens."""

import json

import keras
import numpy as np
import pytest

from odezoo.export import export_preset
from odezoo.models import MacaronTransformer

pytestmark = pytest.mark.export

PARTS = ("encoder", "decoder_step", "greedy")


def tiny_model():
    """A tiny random model (weights ~ N(0, 0.3²), the final LayerNorm's shift 0: greedy tokens vary)."""
    keras.utils.set_random_seed(0)
    model = MacaronTransformer(
        vocabulary_size=40, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, max_positions=12,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0.0, 0.3, w.shape) + (1.0 if w.path.endswith("gamma") else 0.0))
    model.decoder_norm.beta.assign(np.zeros(16))  # else one token wins every step
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny random model (weights ~ N(0, 0.3²), the final LayerNorm's shift 0: greedy tokens vary), its
    preset folder and its
    SavedModel export."""
    model = tiny_model()
    root = tmp_path_factory.mktemp("export")
    folder = model.save_pretrained(root / "tiny", metadata={"preset": "tiny"})
    return model, folder, root / "out", export_preset(str(folder), "saved_model", output_dir=root / "out")


def test_each_part_matches_keras_and_has_its_manifest_entry(exported):
    model, folder, out, report = exported
    assert set(report["parts"]) == set(PARTS)
    for part in PARTS:
        fields = report["parts"][part]
        checks = fields["outputs"].values() if "outputs" in fields else [fields]
        assert all(check["max_abs_diff"] <= check["tolerance"] == 1e-4 for check in checks)
        assert fields["path"] == str(out / "tiny" / "saved_model" / part)
    assert len(report["parts"]["decoder_step"]["outputs"]) == 2  # logits and the updated cache
    manifest = json.loads((out / "MANIFEST.json").read_text())
    sha = json.loads((folder / "metadata.json").read_text())["weights_sha256"]
    assert {f"tiny/saved_model/{part}" for part in PARTS} <= set(manifest)
    assert all(manifest[f"tiny/saved_model/{part}"]["weights_sha256"] == sha for part in PARTS)


def test_greedy_decoding_with_the_exported_parts_gives_greedy_decode_tokens(exported):
    import tensorflow as tf

    model, _, out, _ = exported
    loaded = [tf.saved_model.load(str(out / "tiny" / "saved_model" / part)) for part in PARTS]  # kept alive
    encoder, step, greedy = (part.serve for part in loaded)
    rng = np.random.default_rng(1)
    source = rng.integers(4, 40, (3, 7)).astype("int32")
    mask = np.ones_like(source)
    mask[1, :3] = 0  # a left-padded source
    source[1, :3] = model.pad_id
    expected = model.greedy_decode(source, mask, max_length=12)

    cross_cache = encoder({"encoder_token_ids": source, "encoder_padding_mask": mask})
    cache = np.zeros((3, 1, 2, 12, 2, 8), "float32")
    token, done, tokens = np.full((3, 1), 2, "int32"), np.zeros(3, bool), []
    for index in range(12):
        logits, cache = step(
            {"decoder_token_ids": token, "index": np.array([index], "int32"), "cache": cache,
             "cross_attention_cache": cross_cache, "encoder_padding_mask": mask}
        )  # fmt: skip
        token = np.where(done[:, None], model.pad_id, np.asarray(logits)[:, -1].argmax(-1)[:, None])
        token = token.astype("int32")
        tokens.append(token)
        done |= token[:, 0] == 2
        if done.all():
            break
    np.testing.assert_array_equal(np.concatenate(tokens, 1), expected)
    in_graph = np.asarray(greedy({"encoder_token_ids": source, "encoder_padding_mask": mask}))
    np.testing.assert_array_equal(in_graph[:, : expected.shape[1]], expected)
    assert (in_graph[:, expected.shape[1] :] == model.pad_id).all()
    assert len(set(expected.ravel())) >= 2  # the tokens vary: the comparison means something


def test_the_parts_convert_to_tflite_and_match_in_litert(exported):
    _, folder, out, _ = exported
    report = export_preset(str(folder), "tflite", output_dir=out)
    for part in PARTS:
        fields = report["parts"][part]
        checks = fields["outputs"].values() if "outputs" in fields else [fields]
        assert all(check["max_abs_diff"] <= check["tolerance"] for check in checks), part


def test_onnx_is_refused_with_the_reason(exported):
    from odezoo import OdezooError

    _, folder, out, _ = exported
    with pytest.raises(OdezooError, match=r"cannot be exported to onnx: .* that work: saved_model, tflite\."):
        export_preset(str(folder), "onnx", output_dir=out)
    assert not (out / "tiny" / "onnx").exists()


def test_the_presets_tokenizer_sits_beside_the_exported_parts(exported, tmp_path):
    """Issue 27: the parts take token ids, so the export carries the preset's tokenizer files (verified
    copies) and records them; a preset without assets records none."""
    from odezoo.preset_folder import sha256_of
    from odezoo.presets import resolve

    assert "assets" not in exported[3]
    preset = "macaron_dictionary_de_en"
    report = export_preset(preset, "saved_model", output_dir=tmp_path)
    target = tmp_path / preset / "saved_model"
    names = ("bpe.codes", "dict.txt", "tokenizer.json")
    assert report["assets"] == {name: str(target / name) for name in names}
    assert sorted(p.name for p in target.iterdir()) == sorted([*PARTS, *names])
    recorded = json.loads((resolve(preset).folder / "metadata.json").read_text())["files"]
    assert all(sha256_of(target / name) == recorded[name] for name in names)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert all(manifest[f"{preset}/saved_model/{part}"]["assets"] == report["assets"] for part in PARTS)
