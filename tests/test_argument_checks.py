"""Issue 28, one table per principle: public functions check their arguments (one `OdezooError` saying
what was received and what fits); the whole input is checked (an array whole, a dataset's first batch);
a wrong layout is named with the axis to fix; image files decode whatever their channels; what odezoo
does unasked (truncates, converts, caps, blows up) is a warning with its numbers; large images are
restored in tiles, with progress and the expected time."""

import re
import warnings
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_data import _write_idx  # the IDX file writer

import odezoo
from odezoo import DURR, OdezooError, SmallCNN
from odezoo.adversarial import AdversarialTrainer, Attack, robust_evaluate
from odezoo.adversarial.attacks import pgd
from odezoo.cli import _input_lines, main
from odezoo.data.images import image_dataset, load_split, read_idx, read_image
from odezoo.data.pde import load_trajectories, simulate
from odezoo.errors import OdezooWarning
from odezoo.hub import push_folder
from odezoo.models.durr import durr as durr_module
from odezoo.models.durr import durr_task
from odezoo.models.macaron.macaron_layers import check_rate
from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer, check_sentences
from odezoo.models.pde_net import PDENet2
from odezoo.presets import bundled_folder, get_preset
from odezoo.recipes._common import RunConfig
from odezoo.recipes.convnets import Config as ConvnetConfig
from odezoo.tasks.base import data_options
from odezoo.tasks.image_classification import evaluate
from odezoo.tasks.image_restoration import check_noise_scale

TINY_DURR = {"features": 4, "depth": 2, "policy_features": 2, "policy_depth": 1}


def randomised(model, seed=0, scale=0.1):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return SmallCNN()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, classifier):
    return classifier.save_pretrained(tmp_path_factory.mktemp("saved") / "small_cnn")


@pytest.fixture(scope="module")
def trainer(classifier):
    trainer = AdversarialTrainer(classifier, method="natural", attack=Attack(0.1, 0.01))
    trainer.compile(optimizer="sgd")
    return trainer


def sample(count=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (count, 28, 28, 1)).astype("float32"), rng.integers(0, 10, count)


X, Y = sample()
API_CASES = {
    "load dtype": (
        lambda m, s, t: odezoo.load(s, dtype="float65"),
        r"`dtype` must be a float dtype .* Received: dtype='float65'",
    ),
    "mean not per channel": (
        lambda m, s, t: SmallCNN(mean=0.0, std=[0.3]),
        r"`mean` must be a list of 1 finite numbers, one per channel .* Received: mean=0.0",
    ),
    "list_presets": (lambda m, s, t: odezoo.list_presets(5), r"shell-style name pattern \(str\).* 5 \(int\)"),
    "save to a number": (
        lambda m, s, t: m.save_pretrained(5),
        r"takes a folder \(str or Path\). Received: 5",
    ),
    "metadata list": (
        lambda m, s, t: m.save_pretrained(s.parent / "x", metadata=["a"]),
        r"`metadata` must be a dict, .* Received: \['a'\] \(list\)",
    ),
    "metadata not JSON": (
        lambda m, s, t: m.save_pretrained(s.parent / "x", metadata={"scores": np.zeros(2)}),
        r"metadata\['scores'\] cannot be written to metadata.json .* Received: array",
    ),
    "revision of a folder": (
        lambda m, s, t: odezoo.load(s, revision="v1"),
        r"is a local folder, which has none. Received: revision='v1'",
    ),
    "Attack m": (lambda m, s, t: Attack(0.1, 0.01, m=2.5), r"`m` must be an integer >= 1. Received: m=2.5"),
    "Attack steps": (
        lambda m, s, t: Attack(0.1, 0.01, steps="10"),
        r"`steps` must be an integer >= 1. Received: steps='10' \(str\)",
    ),
    "fit uint8": (
        lambda m, s, t: t.fit((X * 255).astype("uint8"), Y, verbose=0),
        r"received dtype uint8. Convert with `x.astype\('float32'\) / 255`",
    ),
    "fit one-hot": (
        lambda m, s, t: t.fit(X, np.eye(10)[Y], verbose=0),
        r"one-hot \(shape \(20, 10\)\).* pass labels.argmax\(-1\)",
    ),
    "fit 1-based": (
        lambda m, s, t: t.fit(X, np.arange(20) % 10 + 1, verbose=0),
        r"class ids 1..10 but small_cnn(_\d+)? has 10 classes, ids 0..9 \(1-based\? subtract 1\)",
    ),
    "fit lengths": (lambda m, s, t: t.fit(X, Y[:5], verbose=0), r"Received 20 images but 5 labels"),
    "robust list": (
        lambda m, s, t: robust_evaluate(m, [X, Y], eps=0.1, step=0.01, steps=1),
        r"received a list of two arrays, which reads as two batches: pass tuple\(data\)",
    ),
    "robust one-hot": (
        lambda m, s, t: robust_evaluate(m, (X, np.eye(10)[Y]), eps=0.1, step=0.01, steps=1),
        r"The labels are one-hot",
    ),
    "robust empty split": (
        lambda m, s, t: robust_evaluate(
            m, tf.data.Dataset.from_tensor_slices((X, Y)).take(0).batch(4), eps=0.1, step=0.01, steps=1
        ),
        r"robust_evaluate received no examples",
    ),
    "expression threshold str": (
        lambda m, s, t: PDENet2(channels=("u",), grid=8, num_hidden=1).expression(threshold="0.1"),
        r"`threshold` must be a finite number. Received: threshold='0.1' \(str\)",
    ),
    "expression threshold nan": (
        lambda m, s, t: PDENet2(channels=("u",), grid=8, num_hidden=1).expression(threshold=float("nan")),
        r"`threshold` must be a finite number. Received: threshold=nan",
    ),
    "restore sizes differ": (
        lambda m, s, t: DURR(**TINY_DURR).restore([np.zeros((20, 20, 1)), np.zeros((30, 20, 1))]),
        r"received a list of 2 images of different shapes \(\(20, 20, 1\), \(30, 20, 1\)\)",
    ),
    "sigma on the [0, 1] scale": (lambda m, s, t: check_noise_scale(0.1), r"For 0.1 on .* --sigma 25.5"),
    "sigma beyond the overshoot": (lambda m, s, t: check_noise_scale(300.0), r"--sigma 300 is above 75"),
    "data-dir missing": (
        lambda m, s, t: load_split("fashion_mnist", "test", data_dir="/nonexistent"),
        r"'/nonexistent' is not a folder",
    ),
}


@pytest.mark.parametrize("case", API_CASES)
def test_public_functions_refuse_bad_arguments_in_one_line(case, classifier, saved, trainer):
    call, message = API_CASES[case]
    with pytest.raises(OdezooError, match=message):
        call(classifier, saved, trainer)


def test_a_data_dir_is_the_one_folder_read(tmp_path):
    """With `data_dir`, Fashion-MNIST comes from that folder (its IDX files), not from where odezoo
    would look otherwise; an empty one is refused, naming the files looked for."""
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((3, 28, 28), 7))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3]))
    ds, count = load_split("fashion_mnist", "test", data_dir=str(tmp_path))
    assert count == 3 and [int(y) for _, y in ds] == [1, 2, 3]
    with pytest.raises(OdezooError, match=r"holds neither .*\(train-images-idx3-ubyte.gz"):
        load_split("fashion_mnist", "train", data_dir=str(tmp_path))


# --- the whole input -----------------------------------------------------------------------------
def late_8bit(count=88, bad=24):
    x, y = sample(count)
    x[count - bad :] *= 255
    return x, y


WHOLE_INPUT_CASES = {
    "predict": lambda m, t: m.predict(late_8bit()[0], verbose=0),
    "predict dataset (first batch)": lambda m, t: m.predict(
        tf.data.Dataset.from_tensor_slices(late_8bit(88, 88)).batch(8), verbose=0
    ),
    "fit arrays": lambda m, t: t.fit(*late_8bit(), verbose=0),
    "fit dataset (first batch)": lambda m, t: t.fit(
        tf.data.Dataset.from_tensor_slices(late_8bit(88, 88)).batch(8), verbose=0
    ),
}


@pytest.mark.parametrize("case", WHOLE_INPUT_CASES)
def test_8bit_images_anywhere_in_the_input_are_refused(case, classifier, trainer):
    before = [w.copy() for w in classifier.get_weights()]
    with pytest.raises(
        OdezooError, match=r"received values in \[.*, 25\d\.?\d*\].*Divide 8-bit images by 255"
    ):
        WHOLE_INPUT_CASES[case](classifier, trainer)
    assert all(np.array_equal(a, b) for a, b in zip(before, classifier.get_weights()))  # nothing trained


def test_the_message_says_which_images_are_out_of_range(classifier):
    with pytest.raises(OdezooError, match=r"\(24 of 88 images, the first at index 64\)"):
        classifier.predict(late_8bit()[0], verbose=0)


# --- axes ----------------------------------------------------------------------------------------
def pde_model():
    return PDENet2(channels=("u", "v"), grid=8, num_hidden=1)


AXIS_CASES = [
    ("classifier", (28, 28), r"received \(28, 28\). Add a batch and a channel axis: x\[None, \.\.\., None\]"),
    ("classifier", (2, 1, 28, 28), r"The channels come first .*: np.moveaxis\(x, 1, -1\)"),
    (
        "classifier",
        (28, 28, 3),
        r"One image of 3 channels: add a batch axis \(x\[None\]\); the model takes 1",
    ),
    ("classifier", (2, 32, 32, 1), r"Resize the inputs"),
    ("durr", (40, 40), r"received \(40, 40\). Add a batch and a channel axis"),
    ("durr", (2, 1, 40, 40), r"The channels come first"),
    ("pde", (1, 2, 8, 8), r"That is channels first \(batch, channels, y, x\).*np.moveaxis\(u, 1, -1\)"),
    ("pde", (1, 5, 8, 8, 2), r"That is a trajectory \(batch, time, y, x, channels\).*u\[:, 0\]"),
    ("pde", (2, 8, 8), r"one field, channels first \(channels, y, x\): pass np.moveaxis\(u, 0, -1\)\[None\]"),
]


@pytest.mark.parametrize("kind, shape, message", AXIS_CASES)
def test_a_wrong_layout_names_the_axis_to_fix(kind, shape, message, classifier):
    run = {
        "classifier": lambda x: classifier.predict(x, verbose=0),
        "durr": DURR(**TINY_DURR).restore,
        "pde": lambda u: pde_model().rollout(u, 1),
    }[kind]
    with pytest.raises(OdezooError, match=message) as error:
        run(np.zeros(shape, "float32"))
    assert "Resize" not in str(error.value) or shape == (2, 32, 32, 1)


# --- image files ---------------------------------------------------------------------------------
GREY = (np.arange(20 * 24).reshape(20, 24) % 251).astype("uint8")
DECODER_CASES = {
    "grey GIF": lambda path: Image.fromarray(GREY, "L").save(path.with_suffix(".gif")),
    "grey BMP": lambda path: Image.fromarray(GREY, "L").save(path.with_suffix(".bmp")),
    "grey WebP (lossless)": lambda path: Image.fromarray(GREY, "L").save(
        path.with_suffix(".webp"), lossless=True
    ),
    "grey + alpha PNG": lambda path: Image.fromarray(np.stack([GREY, GREY], -1), "LA").save(
        path.with_suffix(".png")
    ),
    "grey as RGB PNG": lambda path: Image.fromarray(np.stack([GREY] * 3, -1)).save(path.with_suffix(".png")),
}


@pytest.mark.parametrize("case", DECODER_CASES)
@pytest.mark.parametrize("channels", [1, 3])
def test_grey_files_of_every_format_decode_to_their_values(case, channels, tmp_path):
    DECODER_CASES[case](tmp_path / "image")
    (path,) = tmp_path.iterdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", OdezooWarning)  # a grey image is converted without a word
        image = read_image(path, channels)
    np.testing.assert_array_equal(image, np.repeat(GREY[..., None] / np.float32(255), channels, -1))


def test_a_colour_photo_to_a_grey_model_is_converted_with_a_warning(tmp_path):
    rgb = np.stack([GREY, GREY // 2, 255 - GREY], -1)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    with pytest.warns(
        OdezooWarning, match=r"'.*photo.png' is in colour \(its channels differ by up to 255 of"
    ):
        image = read_image(tmp_path / "photo.png", 1)
    expected = tf.image.rgb_to_grayscale(rgb.astype("float32") / 255).numpy()
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_a_format_that_cannot_be_read_is_named_with_those_that_can(tmp_path):
    Image.fromarray(GREY).save(tmp_path / "scan.tif")
    with pytest.raises(
        OdezooError, match=r"Cannot read image .*scan.tif.*; give PNG, JPEG, BMP, GIF or WebP files"
    ):
        read_image(tmp_path / "scan.tif", 1)


# --- warnings with the numbers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def translation_tokenizer():
    return MacaronTokenizer.load(bundled_folder("macaron_dictionary_de_en"))


def test_a_sentence_of_unknown_tokens_is_reported(translation_tokenizer):
    with pytest.warns(
        OdezooWarning, match=r"1 of 2 sentence\(s\) hold no token .* sentence 0 .* 2 token\(s\), all <unk>"
    ):
        ids = translation_tokenizer.encode_sources(["😀🎉", "das haus ."])
    assert len(ids) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", OdezooWarning)
        translation_tokenizer.encode_sources(["das haus ."])


def test_raw_text_given_as_token_lines_is_reported(translation_tokenizer):
    lines = [translation_tokenizer.tokenize("Das Haus ist groß."), "Guten Morgen, wie geht es dir?"]
    with pytest.warns(
        OdezooWarning, match=r"1 of 2 token line\(s\) look like raw text, e.g. line 1 .* 3 token"
    ):
        translation_tokenizer.encode_sources(lines, tokenized=True)


def test_a_rollout_that_blows_up_names_the_step_and_the_samples():
    model = randomised(PDENet2(channels=("u",), grid=8, num_hidden=1), scale=1.0)
    u0 = np.ones((2, 8, 8, 1)) * np.array([1.0, 1e150])[:, None, None, None]
    with pytest.warns(OdezooWarning, match=r"blew up at step \d+ of 40: 1 of 2 sample\(s\) \(1\)"):
        path = model.rollout(u0, 40)
    assert np.isfinite(path[0]).all() and path.shape == (2, 41, 8, 8, 1)  # the other sample is kept


def test_a_limit_beyond_the_split_is_said(classifier):
    result = evaluate(classifier, "fashion_mnist", split="sample", limit=5000, batch_size=500)
    assert result["num_examples"] == 1000
    assert result["note"] == "--limit 5000 is more than the 1,000 examples of the split: all were used"
    assert "note" not in evaluate(classifier, "fashion_mnist", split="sample", limit=10, batch_size=10)


TAGGER = "macaron_bert_small_dictionary_en_dictionary_tags"
TAGGER_CASES = {
    "empty text": ("", r"error: Input 0 \(''\) has an empty sentence"),
    "a tab in one sentence": (
        "a\tb",
        r"takes one sentence .* A tab separates the two sentences of a pair: replace",
    ),
    "a long text": (
        " ".join(["house"] * 200),
        r"warning: Input 0 has 202 tokens; .* reads at most 64 .*last 138",
    ),
}


@pytest.mark.parametrize("case", TAGGER_CASES)
def test_the_tagger_says_what_it_did_to_a_text(case, capsys):
    text, message = TAGGER_CASES[case]
    main(["predict", TAGGER, text])
    assert re.search(message, capsys.readouterr().err)


def test_restore_reports_the_cap():
    model = DURR(**TINY_DURR, max_steps=2)
    model.policy.head.bias.assign([-1.0, 1.0])  # always continue
    with pytest.warns(OdezooWarning, match=r"2 of 2 image\(s\) stopped at the cap of max_steps=2 steps"):
        _, steps = model.restore(np.full((2, 20, 20, 1), 0.5, "float32"))
    assert steps.tolist() == [2, 2]
    model.policy.head.bias.assign([1.0, -1.0])  # always stop
    with warnings.catch_warnings():
        warnings.simplefilter("error", OdezooWarning)
        model.restore(np.full((2, 20, 20, 1), 0.5, "float32"))


# --- large images ----------------------------------------------------------------------------------
def test_tiles_cover_the_image_once_within_the_tile_size(monkeypatch):
    monkeypatch.setattr(durr_module, "TILE", 16)
    for height, width in ((16, 16), (17, 50), (70, 45)):
        cover = np.zeros((height, width), int)
        for rows, cols in durr_module.tile_grid(height, width):
            assert rows.stop - rows.start <= 16 and cols.stop - cols.start <= 16
            cover[rows, cols] += 1
        assert (cover == 1).all()


def test_a_large_image_is_restored_in_tiles_as_it_is_whole(monkeypatch, capsys):
    """Tiles with margins give what the whole image gives; the task shows the expected time first."""
    model = randomised(DURR(**TINY_DURR, max_steps=3))
    x = np.random.default_rng(1).uniform(0, 1, (2, 70, 45, 1)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OdezooWarning)
        whole = model.restore(x, steps=3)
        monkeypatch.setattr(durr_module, "TILE", 16)
        calls = []
        tiled = model.restore(x, steps=3, progress=lambda *call: calls.append(call))
        np.testing.assert_allclose(tiled[0], whole[0], atol=1e-6)
        assert calls == [(step, 3, tile, 15) for step in (1, 2, 3) for tile in range(1, 16)]  # 5 x 3 tiles
        monkeypatch.setattr(durr_task, "LONG_SECONDS", 0.0)
        model.task.restore(model, x, steps=3)
    assert re.search(
        r"restoring 70x45 pixels in 15 tiles, up to 3 steps, takes up to about \d+ s", capsys.readouterr().err
    )


# --- the rest of the trial's tracebacks (bench/mistakes.py) ----------------------------------------
def tiny_mean_field():
    return odezoo.models.MeanFieldResNet(num_blocks=2, width=2, image_shape=(4, 4, 1))


MORE_API_CASES = {
    "LMResNet death_rate": (
        lambda p: odezoo.LMResNet(depth=20, death_rate=1.0),
        r"`death_rate` must be in \[0, 1\). Received: death_rate=1.0",
    ),
    "DURR channels": (
        lambda p: DURR(channels=2, **TINY_DURR),
        r"`channels` must be 1 \(grey\) or 3 \(colour\). Received: channels=2",
    ),
    "reorder_blocks repeat": (
        lambda p: tiny_mean_field().reorder_blocks([0, 0]),
        r"permutation of the 2 block indices 0..1. Received: permutation=\[0, 0\]",
    ),
    "grow zero": (
        lambda p: tiny_mean_field().grow(0),
        r"`depth_factor` must be a positive integer. Received: depth_factor=0",
    ),
    "widen fraction": (
        lambda p: tiny_mean_field().widen(1.5),
        r"`width_factor` must be a positive integer. Received: width_factor=1.5",
    ),
    "Macaron rate": (
        lambda p: check_rate("attention_dropout", -0.1),
        r"`attention_dropout` must be a rate in \[0, 1\). Received: attention_dropout=-0.1",
    ),
    "get_preset None": (lambda p: get_preset(None), r"A preset name is a string .* Received: None"),
    "preprocess no images": (
        lambda p: odezoo.preprocess_images([], (28, 28, 1)),
        r"`images` is empty.* Received: images=\[\]",
    ),
    "preprocess preset name": (
        lambda p: odezoo.preprocess_images(np.zeros((28, 28)), "lm_resnet20_fashion_mnist"),
        r"odezoo.load\('lm_resnet20_fashion_mnist'\)\) .* not a preset name",
    ),
    "image_dataset batch 0": (
        lambda p: image_dataset("fashion_mnist", "test", batch_size=0),
        r"`batch_size` must be >= 1. Received: batch_size=0",
    ),
    "image_dataset limit < 0": (
        lambda p: image_dataset("fashion_mnist", "test", batch_size=8, limit=-5),
        r"`limit` must be >= 0. Received: limit=-5",
    ),
    "trainer of a name": (
        lambda p: AdversarialTrainer("small_cnn", method="natural", attack=Attack(0.1, 0.01)),
        r"`model` must be a keras.Model, e.g. odezoo.load\('small_cnn'\)",
    ),
    "trajectories .npy": (
        lambda p: np.save(p / "u.npy", np.zeros(3)) or load_trajectories(p / "u.npy"),
        r"u.npy' \(a bare ndarray, not an .npz archive\)",
    ),
    "IDX not gzip": (
        lambda p: (p / "x.gz").write_bytes(b"\x00\x00\x08\x01") and read_idx(p / "x.gz"),
        r"x.gz is not an unsigned-byte IDX file",
    ),
    "simulate too many": (
        lambda p: simulate("heat", batch=10**8, steps=1),
        r"100000000 heat trajectories do not fit in memory",
    ),
    "option too large": (
        lambda p: data_options("d", "s")[2].check(10**20),
        r"--limit must be <= 9223372036854775807. Received: --limit 100000000000000000000",
    ),
    "predict batch_size 0": (
        lambda p: SmallCNN().predict(X, batch_size=0),
        r"`batch_size` must be >= 1. Received: batch_size=0",
    ),
    "evaluate uint8": (
        lambda p: SmallCNN().evaluate((X * 255).astype("uint8"), Y, verbose=0),
        r"received dtype uint8",
    ),
    "push to a bad id": (
        lambda p: push_folder(p, "my model"),
        r"'my model' is not a Hub repository id",
    ),
}


@pytest.mark.parametrize("case", MORE_API_CASES)
def test_more_bad_arguments_are_refused_in_one_line(case, tmp_path):
    call, message = MORE_API_CASES[case]
    with pytest.raises(OdezooError, match=message):
        call(tmp_path)


@pytest.mark.parametrize("name", ["../../stolen", "models/mine", " ", "..", ".hidden"])
def test_a_preset_name_that_is_not_a_folder_name_is_refused(name):
    with pytest.raises(OdezooError, match=re.escape(f"Received: preset={name!r}")):
        RunConfig().configure({"preset": name}, "lm_resnet")
    assert RunConfig().configure({"preset": "my_model-2.1"}, "lm_resnet").preset == "my_model-2.1"


def test_a_translator_refuses_a_tokenizer_it_cannot_use():
    with pytest.raises(OdezooError, match=r"`tokenizer` must be a MacaronTokenizer .* Received: 'bpe'"):
        odezoo.load("macaron_dictionary_de_en", load_weights=False).translate(["hallo"], tokenizer="bpe")


def test_a_full_stdout_is_one_line(monkeypatch, capsys):
    with open("/dev/full", "w") as full:
        monkeypatch.setattr("sys.stdout", full)
        assert main(["list"]) == 1
    assert capsys.readouterr().err == (
        "odezoo: error: cannot write the output: No space left on device; free some space.\n"
    )


class Terminal:
    def isatty(self):
        return True

    def read(self):
        return "hallo\n"


def test_input_from_a_terminal_says_how_to_end_it(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Terminal())
    assert _input_lines(["-"]) == ["hallo"]
    assert capsys.readouterr().err == "odezoo: reading lines from stdin; end with Ctrl-D\n"


ATTACK_CASES = {
    "pgd uint8": (
        lambda m: pgd(m, (X * 255).astype("uint8"), Y, eps=0.1, step=0.01, steps=1),
        r"received dtype uint8",
    ),
    "pgd eps 8": (
        lambda m: pgd(m, X, Y, eps=8, step=2, steps=1),
        r"eps must be in \(0, 1\].* Received: eps=8",
    ),
    "pgd steps < 1": (
        lambda m: pgd(m, X, Y, eps=0.1, step=0.01, steps=-1),
        r"`steps` must be >= 1. Received: steps=-1",
    ),
    "trainer attack None": (
        lambda m: AdversarialTrainer(m, method="pgd", attack=None),
        r"Method 'pgd' needs `attack`, an odezoo.Attack.* Received: attack=None",
    ),
    "trainer attack tuple": (
        lambda m: AdversarialTrainer(m, method="pgd", attack=(0.1, 0.01, 10)),
        r"Received: attack=\(0.1, 0.01, 10\) \(tuple\)",
    ),
    "trainer beta < 0": (
        lambda m: AdversarialTrainer(m, method="trades", attack=Attack(0.1, 0.01), beta=-1.0),
        r"`beta` must be >= 0. Received: beta=-1.0",
    ),
}


@pytest.mark.parametrize("case", ATTACK_CASES)
def test_attacks_and_trainers_refuse_bad_arguments_in_one_line(case, classifier):
    call, message = ATTACK_CASES[case]
    with pytest.raises(OdezooError, match=message):
        call(classifier)


def test_load_weights_must_be_a_bool(saved):
    with pytest.raises(
        OdezooError, match=r"`load_weights` must be True or False. Received: load_weights='false'"
    ):
        odezoo.load(saved, load_weights="false")


def test_sentences_may_come_from_a_generator():
    assert check_sentences(s for s in ["Hallo", "Welt"]) == ["Hallo", "Welt"]


def test_a_top_k_beyond_the_classes_is_said(capsys):
    assert main(["predict", "small_cnn_natural_fashion_mnist", "--sample", "1", "--top-k", "25"]) == 0
    assert "odezoo predict: warning: --top-k 25 is more than the 10 classes: all 10 are shown." in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"milestones": "30"}, r"milestones \[30.0\] are not before the last epoch \(14\)"),
        ({"warmup_epochs": 20.0}, r"warmup_epochs=20 is not shorter than the run \(epochs=14\)"),
    ],
)
def test_schedule_settings_beyond_the_run_are_said(changes, message):
    with pytest.warns(OdezooWarning, match=message):
        replace(ConvnetConfig(), epochs=14, **changes).validate()


def test_float_images_in_0_255_are_refused():
    with pytest.raises(OdezooError, match=r"Received: image 0 in \[0, 255\]; divide 0..255 images by 255"):
        odezoo.preprocess_images(np.linspace(0, 255, 28 * 28).reshape(28, 28), (28, 28, 1))
    assert odezoo.preprocess_images(np.full((28, 28), 0.5), (28, 28, 1)).max() == 0.5


def test_a_threshold_that_drops_every_term_is_said():
    model = PDENet2(channels=("u",), grid=8, num_hidden=1)
    with pytest.warns(OdezooWarning, match=r"Every term is below threshold=1e\+06"):
        model.expression(threshold=1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OdezooWarning)
        model.expression(threshold=0.0)
