"""Settings checked at every door (issue 28): config overrides of loaded weights, which folder a name
means, and recipe settings refused in one line before the run folder exists."""

import inspect
import json

import numpy as np
import pytest
from test_cli import fails, run  # noqa: E402

import odezoo
from odezoo import LMResNet
from odezoo.models import import_all
from odezoo.presets import bundled_folder, resolve
from odezoo.pretrained import PretrainedMixin
from odezoo.tasks.image_classification import bundled_sample

# --- overrides of the config the weights were trained with ---


@pytest.mark.parametrize(
    "preset,key,trained,value",
    [
        ("lm_resnet20_fashion_mnist", "scheme", "lm", "euler"),  # the LM scalars k dropped: 94.1 -> 81.7 %
        ("mean_field_resnet8_fashion_mnist", "scaling", "mean_field", "standard"),  # 89.7 -> 9.6 %
        ("lm_resnet20_fashion_mnist", "mean", [0.286], [0.5]),
        ("durr_denoise_gray", "depth", 7, 5),
    ],
)
def test_an_override_of_what_the_weights_were_trained_with_is_refused(preset, key, trained, value):
    with pytest.raises(odezoo.OdezooError) as error:
        odezoo.load(preset, **{key: value})
    line = str(error.value)
    assert "\n" not in line
    assert line.startswith(
        f"The weights of preset {preset!r} were trained with {key}={trained!r}; {key}={value!r} changes what "
        f"they compute. Load the preset without `{key}=`"
    )
    assert getattr(odezoo.load(preset, load_weights=False, **{key: value}), key) == value  # untrained: any


def test_safe_overrides_load_and_compute_what_the_preset_computes():
    images, _ = bundled_sample(8)
    preset = odezoo.load("mean_field_resnet8_fashion_mnist")
    reordered = odezoo.load("mean_field_resnet8_fashion_mnist", shuffle_blocks=True, image_shape=(28, 28, 1))
    assert reordered.shuffle_blocks  # a training-time setting: inference runs the blocks in order
    np.testing.assert_array_equal(reordered.predict(images, verbose=0), preset.predict(images, verbose=0))
    euler = odezoo.load("resnet20_fashion_mnist")
    lm = odezoo.load("resnet20_fashion_mnist", scheme="lm")  # the official warm start: k = 0 is Euler
    np.testing.assert_allclose(lm.predict(images, verbose=0), euler.predict(images, verbose=0), atol=1e-5)
    assert odezoo.load("durr_denoise_gray", max_steps=3).max_steps == 3


def test_a_safe_override_that_still_changes_a_layer_is_one_line(tmp_path):
    """The input size of a fully connected embedding (the dense mean-field variant), with or without a new
    head: the weights do not fit, said in one line."""
    model = odezoo.MeanFieldResNet(
        num_blocks=2, width=4, channels=5, num_classes=3, image_shape=(8, 8, 1), variant="dense"
    )
    folder = model.save_pretrained(tmp_path / "dense")
    for head in ({}, {"num_classes": 4}):
        with pytest.raises(odezoo.OdezooError, match="do not fit MeanFieldResNet with overrides") as error:
            odezoo.load(folder, image_shape=(10, 10, 1), **head)
        assert "embed" in str(error.value) and "\n" not in str(error.value)


def test_every_declared_safe_override_is_a_config_key():
    import_all()
    classes = [cls for cls in _subclasses(PretrainedMixin) if cls.__module__.startswith("odezoo.models.")]
    assert len(classes) >= 8
    for cls in classes:
        keys = set(inspect.signature(cls.__init__).parameters) | {"name", "trainable", "dtype"}
        assert cls.SAFE_OVERRIDES <= keys, (cls, cls.SAFE_OVERRIDES - keys)
        assert {key for key, _, _ in cls.SAFE_CHANGES} <= keys


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# --- a registered preset's name never means a local folder ---


def test_a_local_folder_named_like_a_preset_is_used_only_as_a_path(capsys, tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    name = "lm_resnet20_fashion_mnist"
    model = LMResNet(depth=8, width=2, num_classes=10, image_shape=(28, 28, 1))  # the user's 1-epoch model
    mine = model.save_pretrained(tmp_path / name, metadata={"dataset": "fashion_mnist"})
    bundled = bundled_folder(name)
    assert resolve(name).folder == bundled and resolve(name).ignored_folder == mine
    for path in (f"./{name}", f"{name}/", str(mine), mine):
        assert resolve(path).folder == mine and resolve(path).note is None
    code, out, err = run(capsys, "info", name)
    assert code == 0 and json.loads(out)["folder"] == str(bundled)
    assert err == (
        f"odezoo info: note: {name!r} is the registered preset, so {bundled} is used, not the folder {mine}; "
        f"for that folder, name it as a path: ./{name}\n"
    )
    code, out, err = run(capsys, "eval", f"./{name}", "--split", "sample", "--limit", "20")
    result = json.loads(out)
    assert code == 0 and "note:" not in err and result["folder"] == str(mine) and result["num_examples"] == 20


def test_an_unrelated_folder_of_a_presets_name_does_not_block_it(capsys, tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pde_net2_heat").mkdir()
    (tmp_path / "pde_net2_heat" / "notes.txt").write_text("mine")
    assert odezoo.load("pde_net2_heat").name == "pde_net2_heat"
    code, out, _ = run(capsys, "info", "pde_net2_heat")
    assert code == 0 and json.loads(out)["preset"] == "pde_net2_heat"
    assert f"{tmp_path / 'pde_net2_heat'}" in fails(capsys, "info", "./pde_net2_heat")  # named as a path
    (tmp_path / "mine").mkdir()  # a name that is no preset: the local folder, as before
    assert resolve("mine").folder == tmp_path / "mine"


# --- recipe settings: one line, and nothing written ---


@pytest.mark.parametrize(
    "recipe,settings,env,message",
    [
        ("lm_resnet20_fashion_mnist", ["seed=-1"], {}, "`seed` must be in 0 .. 2**32 - 1. Received: seed=-1"),
        ("lm_resnet20_fashion_mnist", ["death_rate=1.5"], {}, "`death_rate` must lie in [0, 1). Received: "),
        ("small_cnn_pgd10_fashion_mnist", ["momentum=5"], {}, "`momentum` must lie in [0, 1). Received: mom"),
        ("lm_resnet20_fashion_mnist", ["label_smoothing=2"], {}, "`label_smoothing` must lie in [0, 1)."),
        (
            "macaron_dictionary_de_en",
            ["dropout=1.0"],
            {},
            "`dropout` must lie in [0, 1). Received: dropou",
        ),
        ("bert_small_dictionary_en", ["attention_dropout=1.5"], {}, "`attention_dropout` must lie in [0, 1)"),
        (
            "durr_denoise_gray",
            ["patch_size=4"],
            {},
            "`patch_size` must be at least 15 pixels, the receptive field of one step at depth=7",
        ),
        ("pde_net2_heat", ["eval_times=1,x"], {}, "`eval_times` must be positive times separated by commas"),
        ("pde_net_linear_cd", ["mesh=0"], {}, "`mesh` must be >= 1. Received: mesh=0"),
        (
            "lm_resnet20_fashion_mnist",
            ["limit=100"],
            {},
            "100 training examples (limit=100) make no full batch of batch_size=128, so the run would "
            "train 0 steps.",
        ),
        (
            "mean_field_resnet8_fashion_mnist",
            ["validation=59950"],
            {},
            "50 training examples (59950 held out) make no full batch of batch_size=128",
        ),
        (
            "mean_field_resnet8_fashion_mnist",
            ["validation=70000"],
            {},
            "Cannot hold out 70000 of the 60000 examples of fashion_mnist (train)",
        ),
        ("macaron_dictionary_de_en", ["base=./nowhere"], {}, "`base` './nowhere' is no translation preset"),
        (
            "macaron_dictionary_de_en",
            ["base=lm_resnet20_fashion_mnist"],
            {},
            "`base` 'lm_resnet20_fashion_mnist' is a LMResNet; the translation recipe fine-tunes",
        ),
        (
            "macaron_bert_small_dictionary_en_dictionary_tags",
            ["base=lm_resnet20_fashion_mnist"],
            {},
            "`base` 'lm_resnet20_fashion_mnist' is a LMResNet; the GLUE recipes fine-tune a MacaronBert",
        ),
        (
            "lm_resnet20_fashion_mnist",
            ["strategy=multi_worker"],
            {"TF_CONFIG": "{bad"},
            "TF_CONFIG='{bad' does not describe a multi-worker cluster",
        ),
    ],
)
def test_bad_settings_are_one_line_and_nothing_is_written(
    capsys, tmp_path, monkeypatch, recipe, settings, env, message
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sets = [arg for setting in settings for arg in ("--set", setting)]
    line = fails(capsys, "train", recipe, *sets, "--workdir", tmp_path / "w")
    assert line.startswith("odezoo train: error: ") and message in line
    assert not (tmp_path / "w").exists()
