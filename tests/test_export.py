"""Export: each format runs in its own runtime and matches Keras; Flex ops are refused unless asked for."""

import json

import keras
import pytest

from odezoo import LMResNet, OdezooError
from odezoo.export import FORMATS, export_model, export_preset, flex_ops

pytestmark = pytest.mark.export


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    model = LMResNet(depth=8, width=4, num_classes=10, image_shape=(28, 28, 1), mean=[0.286], std=[0.353])
    return model.save_pretrained(tmp_path_factory.mktemp("export") / "tiny", metadata={"preset": "tiny"})


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_match_keras(folder, tmp_path, fmt):
    report = export_preset(str(folder), fmt, output_dir=tmp_path)
    assert report["top1_agreement"] == 1.0 and report["tolerance"] == 1e-4
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert (
        manifest[f"tiny/{fmt}"]["weights_sha256"]
        == json.loads((folder / "metadata.json").read_text())["weights_sha256"]
    )


@pytest.mark.parametrize("quantize", ["dynamic", "float16", "int8"])
def test_quantized_tflite(folder, tmp_path, quantize):
    report = export_preset(str(folder), "tflite", output_dir=tmp_path, quantize=quantize)
    assert report["format"] == f"tflite+{quantize}" and report["top1_agreement"] >= 0.95
    assert flex_ops(report["path"]) == []


def test_the_export_stages_show_on_a_terminal_only(folder, tmp_path, capsys, monkeypatch):
    import sys

    from odezoo.cli import main

    argv = ["export", str(folder), "--format", "saved_model", "--output-dir", str(tmp_path)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["format"] == "saved_model" and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # stderr is a terminal, stdout a pipe
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["format"] == "saved_model"  # stdout holds the JSON alone
    assert f"export {folder} to saved_model: 100%" in err and "3/3" in err
    assert all(f", {stage}]" in err for stage in ("load", "convert", "check"))


def test_an_artifact_that_disagrees_with_keras_is_refused(folder, tmp_path, monkeypatch):
    """The agreement check can fail: a runtime whose outputs drift is reported, not deployed."""
    import odezoo.export as export_module

    real = export_module._run_onnx
    monkeypatch.setattr(export_module, "_run_onnx", lambda path, sample: real(path, sample) + 0.01)
    message = r"differs from Keras by 0.01 \(tolerance 0.0001\).*must not be deployed"
    with pytest.raises(OdezooError, match=message):
        export_preset(str(folder), "onnx", output_dir=tmp_path)


@keras.saving.register_keras_serializable(package="odezoo_test")
class _Determinant(keras.layers.Layer):
    def call(self, x):
        import tensorflow as tf

        return tf.linalg.det(tf.reshape(x, (-1, 2, 2)))


def test_flex_ops_are_refused_unless_asked_for(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, _Determinant()(inputs))
    with pytest.raises(OdezooError, match="no builtin kernel for MatrixDeterminant; pass --allow-flex"):
        export_model(model, tmp_path / "refused", "tflite")
    assert not (tmp_path / "refused" / "model.tflite").exists()
    report = export_model(model, tmp_path / "flex", "tflite", allow_flex=True)
    assert report["flex_ops"] == ["FlexMatrixDeterminant"] and report["max_abs_diff"] is None


def test_export_without_the_extra_names_the_install_command_and_writes_nothing(folder, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as if the extra were not installed
    with pytest.raises(
        OdezooError, match=r"needs ai_edge_litert \(the `export` extra\): pip install 'odezoo\[export\]'"
    ):
        export_preset(str(folder), "tflite", output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_export_leaves_no_empty_folders(folder, tmp_path, monkeypatch):
    import odezoo.export as export_module

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "_write", full_disk)
    with pytest.raises(OdezooError, match="Cannot write the onnx export to .*: No space left on device"):
        export_preset(str(folder), "onnx", output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_mean_field_resnet_exports_with_its_stacked_block_weights(tmp_path, fmt):
    """The blocks index one stacked weight tensor per block position; every format keeps that."""
    from odezoo import MeanFieldResNet

    model = MeanFieldResNet(num_blocks=3, width=4, channels=6, num_classes=10, mean=[0.286], std=[0.353])
    folder = model.save_pretrained(tmp_path / "mf", metadata={"preset": "mf"})
    report = export_preset(str(folder), fmt, output_dir=tmp_path / "out")
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] <= 1e-4
