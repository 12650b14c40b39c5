"""Preset folders: saving, resolution (local, bundled, Hub cache), verification, fine-tuning, upload."""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import odezoo
from odezoo import LMResNet, OdezooError
from odezoo import hub as hub_module
from odezoo import presets as presets_module
from odezoo import pretrained as pretrained_module
from odezoo import zoo as zoo_module
from odezoo.preset_folder import read_metadata, sha256_of, write_metadata
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.image_classification import ImageClassification

TINY = {"depth": 8, "num_classes": 4, "image_shape": (8, 8, 1), "width": 2}
X = np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
METRICS = [
    {
        "dataset": "fashion_mnist",
        "split": "test",
        "metric": "accuracy",
        "value": 0.5,
        "command": "odezoo eval x",
    }
]


@pytest.fixture
def folder(tmp_path):
    return LMResNet(**TINY).save_pretrained(
        tmp_path / "tiny", metadata={"preset": "tiny", "metrics": METRICS}
    )


@pytest.fixture
def registered(monkeypatch, tmp_path):
    """Registers preset 'tiny_test' (Hub repo odezoo/tiny_test) with nothing bundled."""

    def register(sha256):
        preset = presets_module.Preset(
            name="tiny_test",
            family="lm_resnet",
            model="LMResNet",
            description="tiny",
            sha256=sha256,
            dataset="fashion_mnist",
            hf_repo="odezoo/tiny_test",
        )
        monkeypatch.setitem(presets_module._REGISTRY, "tiny_test", preset)
        return preset

    monkeypatch.setattr(presets_module, "BUNDLED_ROOTS", (tmp_path / "bundled",))
    return register


def _hub_cache(root, repo_id, commits):
    """Lays out a Hugging Face cache as huggingface_hub does: files in blobs/<sha256>,
    snapshots/<commit>/<file> relative symlinks to them, refs/<branch or tag> naming the commit."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    for ref, (commit, source) in commits.items():
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        for file in source.iterdir():
            blob = repo / "blobs" / sha256_of(file)
            shutil.copyfile(file, blob)
            (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
        (repo / "refs" / ref).write_text(commit)
    return root


@pytest.fixture
def offline_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_round_trip_and_folder_contents(folder):
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["weights_sha256"] == sha256_of(folder / "model.weights.h5")
    assert meta["parameter_count"] == LMResNet(**TINY).count_params()
    assert meta["class_name"] == "LMResNet" and meta["keras_version"] == keras.__version__
    card = (folder / "README.md").read_text()
    assert "model-index" in card and "library_name: keras" in card and "u_{n+1} = (1 - k_n) u_n" in card
    original = LMResNet.from_pretrained(folder)
    again = odezoo.load(str(folder))
    np.testing.assert_array_equal(np.asarray(original(X)), np.asarray(again(X)))


def test_a_trained_models_preset_holds_its_weights_without_the_optimizers_slots(tmp_path):
    """A preset is the model; Adam's two moments would triple the download and the wheel."""
    import h5py

    model = LMResNet(**TINY)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, np.arange(3), epochs=1, verbose=0)
    folder = model.save_pretrained(tmp_path / "trained")
    with h5py.File(folder / "model.weights.h5") as weights:
        assert "optimizer" not in weights
    again = LMResNet.from_pretrained(folder)
    np.testing.assert_array_equal(np.asarray(model(X)), np.asarray(again(X)))


def test_save_is_atomic(folder, monkeypatch):
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(model, path, **kwargs):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pretrained_module.saving_lib, "save_weights_only", broken)
    with pytest.raises(OdezooError, match=r"preset folder .*tiny: disk full; nothing was changed"):
        LMResNet(**TINY).save_pretrained(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny"]


def test_save_refuses_a_folder_that_is_not_a_preset(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(OdezooError, match=r"holds files that odezoo did not write \(notes.txt\)"):
        LMResNet(**TINY).save_pretrained(tmp_path)


def test_a_users_config_json_does_not_make_a_folder_a_preset(tmp_path):
    """A user's own config.json beside their thesis: refused, and every file is left as it was."""
    user = {"config.json": '{"lr": 0.1}', "thesis.txt": "chapter 1", "sub/notes.md": "# notes"}
    for name, text in user.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(OdezooError, match="is not an odezoo preset folder; save_pretrained leaves such"):
        LMResNet(**TINY).save_pretrained(tmp_path)
    assert {n: (tmp_path / n).read_text() for n in user} == user
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))


def test_saving_over_a_preset_keeps_the_users_files(folder):
    (folder / "training_log.txt").write_text("epoch 1: loss 0.3")
    (folder / "plots").mkdir()
    (folder / "plots" / "curve.png").write_bytes(b"png")
    LMResNet(**{**TINY, "num_classes": 5}).save_pretrained(folder)
    assert (folder / "training_log.txt").read_text() == "epoch 1: loss 0.3"
    assert (folder / "plots" / "curve.png").read_bytes() == b"png"
    assert LMResNet.from_pretrained(folder).outputs[0].shape[-1] == 5
    assert "training_log.txt" not in json.loads((folder / "metadata.json").read_text())["files"]


def test_saving_into_a_file_or_a_read_only_folder_says_so(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OdezooError, match="taken is a file, not a folder"):
        LMResNet(**TINY).save_pretrained(tmp_path / "taken")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(OdezooError, match="Cannot write the preset folder .*Choose a writable folder"):
            LMResNet(**TINY).save_pretrained(locked / "p")
    finally:
        locked.chmod(0o700)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_corrupt_weights(folder):
    weights = folder / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(OdezooError, match="is corrupt or truncated.*download it again"):
        LMResNet.from_pretrained(folder)


def test_missing_file(folder):
    (folder / "model.weights.h5").unlink()
    with pytest.raises(OdezooError, match="is missing model.weights.h5: it is incomplete"):
        LMResNet.from_pretrained(folder)
    assert LMResNet.from_pretrained(folder, load_weights=False).count_params() > 0


def test_damaged_files(folder):
    """Every file of the folder is covered by metadata.json's sha256 list; metadata.json must parse."""
    (folder / "config.json").write_text("{not json")
    with pytest.raises(OdezooError, match="config.json is corrupt or truncated"):
        odezoo.load(str(folder))
    (folder / "metadata.json").write_text("{not json")
    with pytest.raises(OdezooError, match="metadata.json is not valid JSON"):
        odezoo.load(str(folder))


def test_assets_are_shipped_and_verified(tmp_path):
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("<pad>\n<s>\n</s>\n<unk>\nhallo\n")
    folder = LMResNet(**TINY).save_pretrained(tmp_path / "p", assets={"assets/vocab.txt": vocabulary})
    files = json.loads((folder / "metadata.json").read_text())["files"]
    assert files["assets/vocab.txt"] == sha256_of(vocabulary)
    odezoo.load(str(folder))
    (folder / "assets" / "vocab.txt").write_text("tampered\n")
    with pytest.raises(OdezooError, match=r"assets/vocab.txt is corrupt or truncated"):
        odezoo.load(str(folder))


@keras.saving.register_keras_serializable(package="odezoo_test")
class _Other(PretrainedMixin, keras.Model):
    TASK_CLASS = ImageClassification

    def __init__(self, *, units=2, **kwargs):
        inputs = keras.Input((3,))
        super().__init__(inputs, keras.layers.Dense(units)(inputs), **kwargs)
        self.set_config(units=units)


def test_wrong_class(tmp_path):
    folder = _Other().save_pretrained(tmp_path / "other")
    with pytest.raises(OdezooError, match="is a `_Other`; call `_Other.from_pretrained` or `odezoo.load`"):
        LMResNet.from_pretrained(folder)
    assert isinstance(odezoo.load(str(folder)), _Other)


def test_unknown_override(folder):
    with pytest.raises(OdezooError, match=r"Unknown config override\(s\) \['num_clases'\]"):
        LMResNet.from_pretrained(folder, num_clases=3)


def test_a_folder_whose_weights_do_not_fit_its_config_blames_the_folder(folder):
    other = LMResNet(**{**TINY, "depth": 14}).save_pretrained(folder.parent / "deeper")
    (folder / "model.weights.h5").write_bytes((other / "model.weights.h5").read_bytes())
    metadata = json.loads((folder / "metadata.json").read_text())
    digest = sha256_of(folder / "model.weights.h5")
    metadata["files"]["model.weights.h5"] = metadata["weights_sha256"] = digest
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(
        OdezooError, match="do not fit the LMResNet its config.json describes .* damaged"
    ) as error:
        LMResNet.from_pretrained(folder)
    assert "overrides" not in str(error.value)


def test_info_reports_a_damaged_preset(capsys, folder):
    from odezoo.cli import main

    (folder / "model.weights.h5").write_bytes(b"truncated")
    assert main(["info", str(folder)]) == 2
    assert "model.weights.h5 is corrupt or truncated" in capsys.readouterr().err


def test_layout_changing_override(folder):
    with pytest.raises(OdezooError, match="were trained with depth=8; depth=14 changes what they compute"):
        LMResNet.from_pretrained(folder, depth=14)


def test_a_folder_saved_before_padding_existed_keeps_its_padding(tmp_path):
    """A config without `padding` was trained with Keras' "same" padding: it loads so, and its weights are
    refused for the official symmetric padding (same shapes, other outputs), saying why and what to do."""
    model = LMResNet(**TINY, padding="same")
    folder = model.save_pretrained(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["config"]["padding"]
    (folder / "config.json").write_text(json.dumps(config))
    write_metadata(folder, read_metadata(folder))
    loaded = LMResNet.from_pretrained(folder)
    assert loaded.padding == "same"
    np.testing.assert_array_equal(np.asarray(loaded(X)), np.asarray(model(X)))
    message = (
        f"The weights of preset '{folder}' were trained with padding='same'; padding='symmetric' computes "
        "something else with the same weights (padding='symmetric' pads every 3x3 convolution by one pixel "
        "on each side, also the strided ones, as the official PyTorch code does; padding='same' (Keras', "
        "what configs saved without a `padding` key mean) pads a stride-2 convolution of an even-sized "
        "input 0 pixels before and 1 after, which shifts its windows by one pixel). Load the preset without "
        "`padding=` (it builds the padding it was trained with), or pass `load_weights=False` and train the "
        "model anew. LMResNet's weights take the overrides: dtype, image_shape, name, trainable, num_classes "
        "(a new head), scheme 'euler' -> 'lm'."
    )
    with pytest.raises(OdezooError) as error:
        LMResNet.from_pretrained(folder, padding="symmetric")
    assert str(error.value) == message
    assert LMResNet.from_pretrained(folder, padding="symmetric", load_weights=False).padding == "symmetric"
    assert LMResNet.from_pretrained(folder, padding="same").padding == "same"


def test_new_head_keeps_the_trunk(folder):
    original = LMResNet.from_pretrained(folder)
    tuned = LMResNet.from_pretrained(folder, num_classes=7)
    assert tuned.get_layer("head").kernel.shape == (8, 7)
    for layer in tuned.layers:
        if layer.weights and layer.name != "head":
            for a, b in zip(layer.get_weights(), original.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    tuned.freeze_trunk()
    assert [v.path for v in tuned.trainable_weights] == ["head/kernel", "head/bias"]


def test_unknown_preset_suggests_names():
    with pytest.raises(
        OdezooError, match="Unknown preset 'lm_resnet20_fashion'.*Did you mean 'lm_resnet20_fashion_mnist'"
    ):
        odezoo.load("lm_resnet20_fashion")


def test_a_preset_name_in_capitals_suggests_the_name():
    with pytest.raises(OdezooError, match="Did you mean 'lm_resnet20_fashion_mnist'"):
        odezoo.load("LM_RESNET20_FASHION_MNIST")


@pytest.mark.parametrize("value", [123, None])
def test_a_preset_that_is_no_name_or_path_is_refused(value):
    message = (
        f"Pass a preset name (`odezoo list`), a preset folder or 'hf://<org>/<repo>'. Received: {value!r}"
    )
    with pytest.raises(OdezooError, match=re.escape(message)):
        odezoo.load(value)


def test_a_folder_that_is_no_preset_is_not_called_incomplete(tmp_path):
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(
        OdezooError, match=re.escape(f"{tmp_path} is not a preset folder (it holds no metadata")
    ):
        odezoo.load(tmp_path)


def test_predict_on_a_file_name_says_to_decode_it(folder):
    model = odezoo.load(folder)
    with pytest.raises(OdezooError, match=r"predict takes arrays, not a file name \('shoe.png'\)"):
        model.predict("shoe.png")


def test_missing_local_path():
    with pytest.raises(OdezooError, match="No preset folder at './nowhere'"):
        odezoo.load("./nowhere")


def test_bundled_copy_is_found_before_the_hub(folder, registered, tmp_path, offline_cache):
    registered(json.loads((folder / "metadata.json").read_text())["weights_sha256"])
    shutil.copytree(folder, tmp_path / "bundled" / "tiny_test")
    assert zoo_module.resolve("tiny_test").folder == tmp_path / "bundled" / "tiny_test"
    np.testing.assert_array_equal(
        np.asarray(odezoo.load("tiny_test")(X)), np.asarray(LMResNet.from_pretrained(folder)(X))
    )


def test_registry_checksum_guards_the_release(folder, registered, tmp_path):
    registered("0" * 64)
    shutil.copytree(folder, tmp_path / "bundled" / "tiny_test")
    with pytest.raises(OdezooError, match="the folder is from another release"):
        odezoo.load("tiny_test")


def test_hub_cache_offline_with_revisions(folder, registered, offline_cache, tmp_path):
    other = LMResNet(**TINY).save_pretrained(tmp_path / "v2")
    registered(json.loads((folder / "metadata.json").read_text())["weights_sha256"])
    _hub_cache(offline_cache, "odezoo/tiny_test", {"main": ("a" * 40, folder), "v2": ("b" * 40, other)})
    main = odezoo.load("tiny_test")
    pinned = odezoo.load("tiny_test", revision="b" * 40)
    tagged = LMResNet.from_pretrained("tiny_test", revision="v2")
    np.testing.assert_array_equal(np.asarray(main(X)), np.asarray(LMResNet.from_pretrained(folder)(X)))
    np.testing.assert_array_equal(np.asarray(pinned(X)), np.asarray(tagged(X)))
    assert not np.allclose(np.asarray(main(X)), np.asarray(pinned(X)))
    via_uri = odezoo.load("hf://odezoo/tiny_test")
    np.testing.assert_array_equal(np.asarray(via_uri(X)), np.asarray(main(X)))


def test_offline_without_cache_says_what_to_do(registered, offline_cache):
    registered("0" * 64)
    with pytest.raises(
        OdezooError, match="HF_HUB_OFFLINE is set and the Hugging Face cache.*hf download odezoo/tiny_test"
    ):
        odezoo.load("tiny_test")


def test_hub_environment_variables_in_a_fresh_process(folder, tmp_path):
    cache = _hub_cache(tmp_path / "hf", "someone/tiny", {"main": ("c" * 40, folder)})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = "import odezoo; print(odezoo.load('hf://someone/tiny').count_params())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == str(LMResNet(**TINY).count_params())


class _FakeApi:
    calls = []

    def create_repo(self, repo_id, private=False, exist_ok=False):
        self.calls.append(("create_repo", repo_id, private))

    def upload_folder(self, repo_id, folder_path, commit_message):
        files = sorted(os.listdir(folder_path))
        self.calls.append(("upload_folder", repo_id, files))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()


def test_push_to_hub(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", _FakeApi)
    _FakeApi.calls.clear()
    url = LMResNet(**TINY).push_to_hub("me/tiny", private=True)
    assert url == "https://huggingface.co/me/tiny/commit/abc"
    assert _FakeApi.calls == [
        ("create_repo", "me/tiny", True),
        ("upload_folder", "me/tiny", ["README.md", "config.json", "metadata.json", "model.weights.h5"]),
    ]


def test_push_failure_says_how_to_log_in(monkeypatch, folder):
    import huggingface_hub

    class Refusing(_FakeApi):
        def create_repo(self, *args, **kwargs):
            raise OSError("401 Unauthorized")

    monkeypatch.setattr(huggingface_hub, "HfApi", Refusing)
    with pytest.raises(
        OdezooError, match=r"Could not upload to Hub repository 'me/tiny' \(401 Unauthorized\). Log in"
    ):
        hub_module.push_folder(folder, "me/tiny")


# --- issue 27: a model loaded from a preset keeps what the preset carried when it is saved ---

CLASSIFIER = "lm_resnet20_fashion_mnist"


def test_a_saved_classifier_keeps_its_data_set_and_class_names(tmp_path, capsys):
    """`odezoo eval` needs no --dataset for the saved folder and `odezoo predict` names the classes."""
    from test_cli import run

    model = odezoo.load(CLASSIFIER)
    source = read_metadata(model.preset_folder)
    folder = model.save_pretrained(tmp_path / "mine")
    meta = read_metadata(folder)
    assert meta["dataset"] == "fashion_mnist" and meta["class_names"] == source["class_names"]
    assert meta["base"] == CLASSIFIER
    # not the published preset, and not its measurements or training record
    assert not {"preset", "metrics", "recipe", "recipe_config", "train_command", "history"} & set(meta)
    again = odezoo.load(str(folder))
    images = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(again(images)), np.asarray(model(images)))
    code, out, _ = run(capsys, "predict", folder, "--sample", "2")
    results = json.loads(out)
    assert code == 0 and results[0]["label"] == "Ankle boot" and results[0]["top"][0]["class"] == "Ankle boot"
    assert all(top["class"] in source["class_names"] for r in results for top in r["top"])
    assert run(capsys, "predict", CLASSIFIER, "--sample", "2")[1] == out  # as the preset prints it
    code, out, _ = run(capsys, "eval", folder, "--split", "sample", "--limit", "50")
    result = json.loads(out)
    assert code == 0 and result["dataset"] == "fashion_mnist" and result["num_examples"] == 50


def test_a_classifier_with_a_new_head_does_not_inherit_the_labels(tmp_path, capsys):
    """Three classes are not Fashion-MNIST's ten: the class names and the data set are the caller's."""
    import tensorflow as tf
    from test_cli import fails, run

    tuned = odezoo.load(CLASSIFIER, num_classes=3)
    folder = tuned.save_pretrained(tmp_path / "three")
    meta = read_metadata(folder)
    assert "class_names" not in meta and "dataset" not in meta and meta["base"] == CLASSIFIER
    line = fails(capsys, "eval", folder, "--split", "sample", "--limit", "10")
    assert "does not record its data set; pass --dataset" in line
    names = ["cat", "dog", "bird"]
    folder = tuned.save_pretrained(tmp_path / "named", metadata={"class_names": names})
    assert read_metadata(folder)["class_names"] == names
    image = tmp_path / "pet.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.full((28, 28, 1), 120, np.uint8)))
    code, out, _ = run(capsys, "predict", folder, image)
    assert code == 0 and sorted(top["class"] for top in json.loads(out)[0]["top"]) == sorted(names)


def test_saving_keeps_the_folders_assets_and_what_the_caller_passes_wins(tmp_path):
    vocabulary, notes = tmp_path / "vocab.txt", tmp_path / "notes.txt"
    vocabulary.write_text("hallo\nwelt\n")
    notes.write_text("the preset's notes\n")
    source = LMResNet(**TINY).save_pretrained(
        tmp_path / "source",
        metadata={"preset": "source", "dataset": "fashion_mnist", "class_names": list("abcd"),
                  "license": "gpl-2.0", "metrics": METRICS, "examples": [1]},
        assets={"assets/vocab.txt": vocabulary, "notes.txt": notes},
    )  # fmt: skip
    model = odezoo.load(str(source))
    mine = tmp_path / "my_notes.txt"
    mine.write_text("my notes\n")
    folder = model.save_pretrained(
        tmp_path / "out", metadata={"preset": "mine", "dataset": "mnist"}, assets={"notes.txt": mine}
    )
    meta = read_metadata(folder)
    assert (folder / "assets" / "vocab.txt").read_text() == "hallo\nwelt\n"
    assert (folder / "notes.txt").read_text() == "my notes\n"
    assert meta["files"]["assets/vocab.txt"] == sha256_of(vocabulary)
    assert (meta["preset"], meta["dataset"], meta["base"]) == ("mine", "mnist", "source")
    assert meta["class_names"] == list("abcd") and meta["license"] == "gpl-2.0"
    assert "metrics" not in meta and "examples" not in meta
    assert "license: gpl-2.0" in (folder / "README.md").read_text()
    # a folder without a preset name is named by its path; saving into the folder it came from keeps
    # its assets
    again = odezoo.load(str(folder))
    bare = LMResNet(**TINY).save_pretrained(tmp_path / "bare")
    assert read_metadata(odezoo.load(str(bare)).save_pretrained(tmp_path / "b2"))["base"] == str(bare)
    again.save_pretrained(folder)
    assert sorted(read_metadata(folder)["files"]) == [
        "README.md", "assets/vocab.txt", "config.json", "model.weights.h5", "notes.txt"
    ]  # fmt: skip
    assert (folder / "notes.txt").read_text() == "my notes\n"


def test_a_damaged_asset_of_the_source_is_not_carried(tmp_path):
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("hallo\n")
    source = LMResNet(**TINY).save_pretrained(tmp_path / "source", assets={"vocab.txt": vocabulary})
    model = odezoo.load(str(source))
    (source / "vocab.txt").write_text("tampered\n")
    with pytest.raises(OdezooError) as error:
        model.save_pretrained(tmp_path / "out")
    assert f"was loaded from {source}" in str(error.value)
    assert "vocab.txt is corrupt or truncated" in str(error.value)
    assert "set `model.preset_folder = None`" in str(error.value)
    assert not (tmp_path / "out").exists()
    model.preset_folder = None
    meta = read_metadata(model.save_pretrained(tmp_path / "out"))
    assert "vocab.txt" not in meta["files"] and "base" not in meta


def test_a_saved_pde_preset_keeps_its_equation_and_plot(tmp_path, capsys):
    """PDE-Net's evaluation simulates the preset's `equation`: the saved folder is evaluated without it."""
    from test_cli import run

    folder = odezoo.load("pde_net2_heat").save_pretrained(tmp_path / "heat")
    meta = read_metadata(folder)
    assert meta["equation"] == "heat" and "rollout.png" in meta["files"] and "pde_report" not in meta
    code, out, err = run(capsys, "eval", folder, "--trajectories", "2")
    assert code == 0, err
    assert json.loads(out)["equation"] == "heat"


def test_a_saved_restorer_is_evaluated_on_its_own_degradation(tmp_path):
    """A saved copy of the JPEG deblocker keeps `degradation`, so `odezoo eval` on it scores deblocking at
    the card's quality, as on the preset, not the Gaussian noise of a restorer that records none."""
    from odezoo.tasks.image_restoration import own_degradation

    folder = odezoo.load("durr_deblock_jpeg").save_pretrained(tmp_path / "mine")
    assert read_metadata(folder)["degradation"] == {"quality": 20}
    assert own_degradation(read_metadata(folder)) == {"quality": 20}
    assert own_degradation({**read_metadata(folder), "degradation": {"sigma": 15.0}}) == {"sigma": 15.0}
