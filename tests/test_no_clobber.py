"""Nothing lost, nothing escaping (issue 28): outputs never collide or replace a file unasked, names
never leave their folder, writes are whole or absent, stdout is pure JSON and JSON files are strict."""

import errno
import json
import os

import numpy as np
import pytest
from hub_server import HubServer

import odezoo._files as files
from odezoo import DURR, LMResNet, OdezooError
from odezoo.cli import main

DURR_TINY = {"features": 8, "depth": 3, "policy_features": 4, "policy_depth": 2, "num_steps": 2}
TINY = {"depth": 8, "num_classes": 4, "image_shape": (8, 8, 1), "width": 2}


def cli(capsys, *argv):
    """`(exit code, stdout, stderr)` of `odezoo argv`."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(capsys, *argv):
    """The one error line `odezoo argv` fails with (exit code 2; warnings aside, no traceback)."""
    code, _, err = cli(capsys, *argv)
    assert code == 2 and "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if not line.startswith(f"odezoo {argv[0]}: warning:")]
    return line


@pytest.fixture(scope="module")
def restorer(tmp_path_factory):
    return DURR(**DURR_TINY).save_pretrained(tmp_path_factory.mktemp("durr") / "tiny_durr")


def write_png(path, seed=0):
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 1), dtype="uint8")
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


def contents(folder):
    """`{relative path: bytes}` of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- clobbering: outputs never collide, never replace a file unasked ---


def test_restored_images_never_collide_nor_replace_a_users_file(restorer, tmp_path, capsys):
    a, b = write_png(tmp_path / "a" / "photo.png", 1), write_png(tmp_path / "b" / "photo.png", 2)
    out = tmp_path / "restored"
    code, stdout, err = cli(capsys, "predict", restorer, a, b, "--out", out)
    assert code == 0, err
    written = [r["output"] for r in json.loads(stdout)]
    assert written == [str(out / "a" / "photo.png"), str(out / "b" / "photo.png")]
    assert contents(out)["a/photo.png"] != contents(out)["b/photo.png"]  # two images, two files
    # photo.png and photo.jpg: the suffix tells them apart
    jpg = tmp_path / "a" / "photo.jpg"
    jpg.write_bytes((tmp_path / "a" / "photo.png").read_bytes())
    code, stdout, _ = cli(capsys, "predict", restorer, a, jpg, "--out", tmp_path / "two")
    assert [r["output"] for r in json.loads(stdout)] == [
        str(tmp_path / "two" / "photo.png.png"), str(tmp_path / "two" / "photo.jpg.png")
    ]  # fmt: skip
    # a file already there, the user's or an earlier run's, is kept unless --overwrite
    mine = tmp_path / "mine"
    (mine / "photo.png").parent.mkdir()
    (mine / "photo.png").write_bytes(b"my own picture")
    line = error_line(capsys, "predict", restorer, a, "--out", mine)
    assert (
        line == f"odezoo predict: error: Output {mine / 'photo.png'} exists; pass --overwrite to replace it."
    )
    line = error_line(capsys, "predict", restorer, a, "--out", mine / "photo.png")
    assert line.endswith(f"--out {mine / 'photo.png'} exists; pass --overwrite to replace it.")
    assert (mine / "photo.png").read_bytes() == b"my own picture"
    assert cli(capsys, "predict", restorer, a, "--out", mine / "photo.png", "--overwrite")[0] == 0
    assert (mine / "photo.png").read_bytes().startswith(b"\x89PNG")


def test_a_file_looking_out_is_a_file(restorer, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = write_png(tmp_path / "a.png"), write_png(tmp_path / "b.png")
    line = error_line(capsys, "predict", restorer, a, "--out", "result.jpg")
    assert "--out result.jpg names a JPG file, but restored images are written as PNG" in line
    line = error_line(capsys, "predict", restorer, a, b, "--out", "result.png")
    assert "--out result.png names one file but 2 images were given" in line
    assert not (tmp_path / "result.jpg").exists() and not (tmp_path / "result.png").exists()
    assert cli(capsys, "predict", restorer, a, "--out", "result.png")[0] == 0
    assert (tmp_path / "result.png").is_file()


def test_simulate_keeps_an_earlier_file_unless_overwrite(tmp_path, capsys):
    argv = ["simulate", "heat", "--steps", "1", "--out", tmp_path]
    first = json.loads(cli(capsys, *argv, "--n", "3")[1])
    line = error_line(capsys, *argv, "--n", "1")
    assert line.endswith(f"Output {first['path']} exists; pass --overwrite to replace it.")
    with np.load(first["path"]) as f:
        assert f["u"].shape[0] == 3
    assert cli(capsys, *argv, "--n", "1", "--overwrite")[0] == 0
    with np.load(first["path"]) as f:
        assert f["u"].shape[0] == 1


def test_save_pretrained_keeps_a_file_the_user_edited(tmp_path):
    folder = LMResNet(**TINY).save_pretrained(tmp_path / "p")
    LMResNet(**TINY).save_pretrained(folder)  # odezoo's own files are replaced
    card = folder / "README.md"
    card.write_text(card.read_text() + "\nMy notes on this model.\n")
    before = contents(folder)
    with pytest.raises(OdezooError) as error:
        LMResNet(**TINY).save_pretrained(folder)
    assert str(error.value).startswith(f"README.md in {folder} changed since odezoo wrote it")
    assert contents(folder) == before
    card.rename(tmp_path / "my_card.md")  # moved away, the folder can be written again
    LMResNet(**TINY).save_pretrained(folder)


# --- escapes: a name never leaves its folder ---


@pytest.mark.parametrize("name", ["../escaped.txt", "sub/../../escaped.txt", "/tmp/escaped.txt", ""])
def test_asset_names_stay_inside_the_folder(tmp_path, name):
    source = tmp_path / "source.txt"
    source.write_text("x")
    with pytest.raises(OdezooError, match=f"Asset name '{name}' is not a name inside the folder"):
        LMResNet(**TINY).save_pretrained(tmp_path / "p" / "q", assets={name: source})
    assert not (tmp_path / "p" / "escaped.txt").exists() and not (tmp_path / "p").exists()


def test_links_leading_out_of_the_folder_are_refused(tmp_path):
    folder = LMResNet(**TINY).save_pretrained(tmp_path / "p")
    (tmp_path / "elsewhere").mkdir()
    (folder / "plots").symlink_to(tmp_path / "elsewhere")  # the user's link, kept by saving
    source = tmp_path / "source.txt"
    source.write_text("x")
    with pytest.raises(
        OdezooError, match="Asset name 'plots/a.txt' leads out of the folder .* through a link"
    ):
        LMResNet(**TINY).save_pretrained(folder, assets={"plots/a.txt": source})
    assert not list((tmp_path / "elsewhere").iterdir())
    with pytest.raises(OdezooError, match="Asset name 'config.json' is a file of the preset format"):
        LMResNet(**TINY).save_pretrained(tmp_path / "r", assets={"config.json": source})


def test_files_listed_in_metadata_stay_inside_the_folder(tmp_path, capsys):
    (tmp_path / "secret.txt").write_text("not odezoo's")
    folder = LMResNet(**TINY).save_pretrained(tmp_path / "p")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["files"]["../secret.txt"] = "0" * 64
    (folder / "metadata.json").write_text(json.dumps(metadata))
    line = error_line(capsys, "info", folder)
    assert line.startswith(f"odezoo info: error: {folder / 'metadata.json'} lists the file '../secret.txt'")
    assert line.endswith("the folder is damaged or forged: delete it and download it again.")


def test_export_names_stay_inside_the_output_folder(tmp_path, capsys):
    folder = LMResNet(**TINY).save_pretrained(tmp_path / "p", metadata={"preset": "../../escaped"})
    line = error_line(
        capsys, "export", folder, "--format", "saved_model", "--output-dir", tmp_path / "x" / "y"
    )
    assert "Preset name '../../escaped' is not a name inside the folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # nothing written, outside or in


def test_a_hub_file_list_leaving_the_cache_is_one_line(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from odezoo.hub import hub_snapshot

    server = HubServer()
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    template = server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        server.commit("odezoo-test/evil", {"config.json": b"{}", "../../../escaped.txt": b"x"})
        with pytest.raises(OdezooError, match=r"^Cannot download 'odezoo-test/evil': Invalid filename"):
            hub_snapshot("odezoo-test/evil")
    finally:
        server.stop()
    assert not list(tmp_path.rglob("escaped.txt"))


# --- atomic writes: a full or read-only disk gives one line and no partial file ---


def test_a_full_or_read_only_disk_leaves_no_partial_output(restorer, tmp_path, capsys, monkeypatch):
    a, b = write_png(tmp_path / "in" / "a.png"), write_png(tmp_path / "in" / "b.png")
    out = tmp_path / "out"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(files.os, "fsync", full)  # every byte went out, the disk could not keep them
        line = error_line(capsys, "predict", restorer, a, b, "--out", out)
    assert line == (
        f"odezoo predict: error: Cannot write {out / 'a.png'}: No space left on device; 0 of 2 image(s) "
        "were written before it. Free some space or choose a writable --out."
    )
    assert contents(out) == {}  # no truncated PNG, no temporary file

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    output = tmp_path / "result.json"
    with monkeypatch.context() as m:
        m.setattr(files, "open", read_only, raising=False)  # root writes through chmod: refuse opening
        line = error_line(capsys, "predict", restorer, a, "--out", out, "--output", output)
        assert "Cannot write" in line and "Read-only file system" in line
    assert contents(out) == {} and not output.exists()
    assert cli(capsys, "predict", restorer, a, "--out", out, "--output", output)[0] == 0

    def full_for_json(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / ".result.json")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return open(path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(files, "open", full_for_json, raising=False)
        line = error_line(capsys, "predict", restorer, b, "--out", out, "--output", output, "--overwrite")
    assert line.endswith(f"Cannot write --output {output}: No space left on device. Free some space or "
                         "choose a writable file.")  # fmt: skip
    assert json.loads(output.read_text())[0]["input"] == str(a)  # the earlier output, whole


def test_disk_space_messages_tell_the_sizes_apart(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    model = LMResNet(**TINY)
    needed = sum(int(np.prod(v.shape)) * 4 for v in model.weights) + (1 << 20)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1e12, 1e12, needed - 200_000))
    with pytest.raises(OdezooError) as error:
        model.save_pretrained(tmp_path / "p")
    free, needed = (f"{n / 1e6:.1f} MB" for n in (needed - 200_000, needed))
    assert free != needed and f"{free} free, about {needed} needed" in str(error.value)


# --- stdout is the JSON alone; JSON is strict and readable ---


def test_train_writes_progress_to_stderr_and_only_json_to_stdout(tmp_path, capsys, monkeypatch):
    """Whatever a recipe prints (Keras' progress, its per-epoch lines) goes to stderr; stdout holds the
    final JSON alone, its non-ASCII text readable."""
    import keras

    import odezoo.recipes as recipes

    _, config = recipes.get_recipe("small_cnn_natural_fashion_mnist")

    def train(config, workdir):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=2)
        print(json.dumps({"epoch": 2, "loss": 0.0}), flush=True)
        return {"preset_dir": str(workdir), "note": "Übung"}

    monkeypatch.setattr(recipes, "get_recipe", lambda name: (train, config))
    code, out, err = cli(capsys, "train", "small_cnn_natural_fashion_mnist", "--workdir", tmp_path / "run")
    assert code == 0, err
    assert json.loads(out) == {"preset_dir": str(tmp_path / "run"), "note": "Übung"}  # stdout: one JSON
    assert '"note": "Übung"' in out
    assert "Epoch 2/2" in err and '{"epoch": 2, "loss": 0.0}' in err


def test_json_files_hold_no_nan_and_keep_non_ascii(tmp_path):
    def strict(path):
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=pytest.fail)

    history = [{"loss": 0.5}, {"loss": float("nan")}, {"loss": float("inf")}]
    files.write_json_atomic(tmp_path / "metrics.json", {"history": history, "note": "Übung"})
    metrics = strict(tmp_path / "metrics.json")
    assert [h["loss"] for h in metrics["history"]] == [0.5, None, None]
    assert metrics["non_finite"] == {"history[1].loss": "nan", "history[2].loss": "inf"}
    assert "Übung" in (tmp_path / "metrics.json").read_text(encoding="utf-8")
    folder = LMResNet(**TINY).save_pretrained(tmp_path / "p", metadata={"history": history})
    assert strict(folder / "metadata.json")["non_finite"] == metrics["non_finite"]
