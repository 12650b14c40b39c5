"""`odezoo predict` per task (issue 27): fill-mask on a masked-LM preset (the probabilities are the softmax
of the logits at the mask), inputs read from files or standard input, the JSON written to `--output`, and
folders of images; one line for each bad input."""

import io
import json
import sys

import keras
import numpy as np
import pytest

pytest.importorskip("sacremoses")
pytest.importorskip("subword_nmt")

from test_cli import fails, run  # noqa: E402

import odezoo  # noqa: E402
from odezoo.errors import OdezooError  # noqa: E402
from odezoo.models import MacaronBert  # noqa: E402
from odezoo.models.macaron.macaron_bert_inputs import CLS_ID, MASK_ID  # noqa: E402
from odezoo.models.macaron.macaron_tokenizer import Dictionary, MacaronTokenizer  # noqa: E402
from odezoo.tasks import get_task  # noqa: E402

PRESET = "macaron_bert_small_dictionary_en"
WORDS = ["the", "cat", "sat", "a", "dog", "ran", "."]  # ids 6..12 after <mask> = 4 and <cls> = 5
TINY = {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16, "max_positions": 12,
        "dropout": 0.0, "attention_dropout": 0.0}  # fmt: skip


def tiny_tokenizer():
    """Moses + lowercase, no BPE, a BERT dictionary: `<mask>` = 4, `<cls>` = 5, then `WORDS`."""
    return MacaronTokenizer(Dictionary(["<mask>", "<cls>", *WORDS]), source_lang="en", target_lang="en")


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """A tiny random masked LM and a tiny two-class classifier, saved with the tiny tokenizer."""
    tmp = tmp_path_factory.mktemp("tiny_bert")
    assets = tiny_tokenizer().save(tmp / "tokenizer")
    keras.utils.set_random_seed(0)
    return {
        name: MacaronBert(vocabulary_size=len(WORDS) + 6, **TINY, **config).save_pretrained(
            tmp / name, metadata={"preset": name}, assets=assets
        )
        for name, config in (("mlm", {}), ("classifier", {"num_classes": 2}))
    }


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def test_fill_mask_probabilities_are_the_softmax_of_the_logits_at_the_mask(tiny_folders):
    model = odezoo.load(tiny_folders["mlm"])
    texts = ["the <mask> sat .", "<mask> dog ran<mask>"]
    filled = model.fill_mask(texts, top_k=3)
    # by hand: <cls> the <mask> sat . </s> and <cls> <mask> dog ran <mask> </s>, one segment, no padding
    ids = np.array([[CLS_ID, 6, MASK_ID, 8, 12, 2], [CLS_ID, MASK_ID, 10, 11, MASK_ID, 2]], "int32")
    inputs = {"token_ids": ids, "segment_ids": np.ones_like(ids), "padding_mask": np.ones_like(ids)}
    probabilities = _softmax(np.asarray(model.predict(inputs, verbose=0), "float64"))
    assert [len(masks) for masks in filled] == [1, 2]
    for (row, column), top in zip([(0, 2), (1, 1), (1, 4)], [filled[0][0], *filled[1]]):
        p = probabilities[row, column]
        best = np.argsort(-p[CLS_ID + 1 :])[:3] + CLS_ID + 1  # the specials and <mask>, <cls> left out
        assert [t["token"] for t in top] == [WORDS[i - CLS_ID - 1] for i in best]
        np.testing.assert_allclose([t["probability"] for t in top], p[best], rtol=1e-6)
    # batches change nothing
    one_by_one = model.fill_mask(texts, top_k=3, batch_size=1)
    for a, b in zip(sum(filled, []), sum(one_by_one, [])):
        assert [t["token"] for t in a] == [t["token"] for t in b]
        np.testing.assert_allclose([t["probability"] for t in a], [t["probability"] for t in b], rtol=1e-5)


def test_fill_mask_refuses_what_does_not_fit(tiny_folders):
    model = odezoo.load(tiny_folders["mlm"])
    for texts, message in (
        (["the cat sat"], r"Text 0 \('the cat sat'\) holds no <mask>: add one where a word is to be filled"),
        ("the <mask> sat", r"wrap one text in a list"),
        (
            ["the <mask> " + "cat " * 12],
            r"Text 0 .* has 16 tokens with <cls> and </s>, more than the model's ",
        ),
    ):
        with pytest.raises(OdezooError, match=message):
            model.fill_mask(texts)
    with pytest.raises(OdezooError, match="`top_k` must be >= 1"):
        model.fill_mask(["the <mask>"], top_k=0)
    with pytest.raises(OdezooError, match="fill_mask needs the masked-LM head"):
        odezoo.load(tiny_folders["classifier"]).fill_mask(["the <mask>"])


def test_fill_mask_on_the_bundled_preset(capsys):
    texts = ["the <mask> was given an injection", "a <mask> of <mask>"]
    code, out, err = run(capsys, "predict", PRESET, *texts, "--top-k", 4)
    results = json.loads(out)
    assert code == 0, err
    assert [r["text"] for r in results] == texts and [len(r["masks"]) for r in results] == [1, 2]
    for mask in (mask for r in results for mask in r["masks"]):
        probabilities = [t["probability"] for t in mask]
        assert len(mask) == 4 and probabilities == sorted(probabilities, reverse=True)
        assert all(0 < p <= 1 for p in probabilities) and sum(probabilities) <= 1
        assert all(t["token"] and t["token"] not in ("<mask>", "<cls>", "<unk>") for t in mask)
    assert "holds no <mask>: add one" in fails(capsys, "predict", PRESET, "the house is red")
    assert "Give texts holding <mask> as arguments" in fails(capsys, "predict", PRESET)
    assert "--top-k must be >= 1" in fails(capsys, "predict", PRESET, "a <mask>", "--top-k", 0)
    assert "--beam does not apply to" in fails(capsys, "predict", PRESET, "a <mask>", "--beam", 2)


def test_inputs_from_a_file_with_a_progress_bar_on_a_terminal(capsys, tiny_folders, tmp_path, monkeypatch):
    texts = [f"the <mask> {WORDS[i % 7]}" for i in range(40)]  # two batches of fill_mask
    (tmp_path / "texts.txt").write_text("\n".join(texts[:30]) + "\n\n" + "\n".join(texts[30:]) + "\n")
    code, out, err = run(capsys, "predict", tiny_folders["mlm"], texts[0], "--input", tmp_path / "texts.txt")
    assert code == 0 and err == ""
    assert [r["text"] for r in json.loads(out)] == [texts[0], *texts]  # arguments first, blank lines out
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # stderr is a terminal, stdout a pipe
    code, again, err = run(capsys, "predict", tiny_folders["mlm"], "--input", tmp_path / "texts.txt")
    tokens = [[[t["token"] for t in mask] for mask in r["masks"]] for r in json.loads(out)]
    assert (
        code == 0 and [[[t["token"] for t in m] for m in r["masks"]] for r in json.loads(again)] == tokens[1:]
    )
    assert "filling masks: 100%" in err and "2/2" in err


def test_pairs_from_standard_input(capsys, tiny_folders, monkeypatch):
    lines = "the cat sat\tthe dog ran\r\n\na dog .\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code, out, err = run(capsys, "predict", tiny_folders["classifier"], "--input", "-")
    assert code == 0, err
    texts = ["the cat sat\tthe dog ran", "a dog ."]
    assert [r["text"] for r in json.loads(out)] == texts
    assert run(capsys, "predict", tiny_folders["classifier"], *texts)[1] == out  # the same as arguments


def test_output_file_is_written_and_never_replaced_unasked(capsys, tiny_folders, tmp_path):
    output = tmp_path / "results" / "filled.json"
    argv = ("predict", tiny_folders["mlm"], "the <mask> sat", "--output", output)
    code, out, err = run(capsys, *argv)
    assert code == 0 and out == "" and err == ""
    written = output.read_text()
    assert json.loads(written) == json.loads(run(capsys, "predict", tiny_folders["mlm"], "the <mask> sat")[1])
    line = fails(capsys, *argv[:2], "a <mask>", *argv[3:])
    assert line == f"odezoo predict: error: --output {output} exists; pass --overwrite to replace it."
    assert output.read_text() == written
    assert run(capsys, *argv[:2], "a <mask>", *argv[3:], "--overwrite")[0] == 0
    assert json.loads(output.read_text())[0]["text"] == "a <mask>"
    assert fails(capsys, *argv[:4], tmp_path) == (
        f"odezoo predict: error: --output {tmp_path} is a folder; give the name of the JSON file to write."
    )


def test_bad_input_files_give_one_line_each(capsys, tiny_folders, tmp_path):
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 <mask>\n".encode("latin-1"))
    folder = tiny_folders["mlm"]
    assert fails(capsys, "predict", folder, "--input", tmp_path / "missing.txt") == (
        f"odezoo predict: error: Cannot read --input {tmp_path / 'missing.txt'} (No such file or directory)."
    )
    assert "holds no inputs: write one a line." in fails(
        capsys, "predict", folder, "--input", tmp_path / "blank.txt"
    )
    assert "it is not UTF-8 text" in fails(capsys, "predict", folder, "--input", tmp_path / "latin1.txt")
    assert "(Is a directory)" in fails(capsys, "predict", folder, "--input", tmp_path)


def _write_images(folder, names, shape=(8, 8, 1)):
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        pixels = rng.integers(0, 256, shape, dtype="uint8")
        encode = tf.io.encode_jpeg if name.endswith(".jpg") else tf.io.encode_png
        tf.io.write_file(str(folder / name), encode(pixels))


def test_restoration_takes_a_folder_of_images(tmp_path):
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs), name="restorer")
    _write_images(tmp_path / "noisy", ["b.png", "a.jpg", "C.PNG"])
    (tmp_path / "noisy" / "notes.txt").write_text("not an image")
    (tmp_path / "noisy" / "sub.png").mkdir()  # a folder named like an image is no image
    task = get_task("image_restoration")
    results = task.predict(model, {}, [str(tmp_path / "noisy")], out=str(tmp_path / "out"))
    assert [r["input"] for r in results] == [str(tmp_path / "noisy" / n) for n in ("C.PNG", "a.jpg", "b.png")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["C.png", "a.png", "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        OdezooError, match=r"^The folder .*empty holds no image files \(PNG, JPEG, BMP, GIF or WebP\)\.$"
    ):
        task.predict(model, {}, [str(tmp_path / "empty")], out=str(tmp_path / "out"))
