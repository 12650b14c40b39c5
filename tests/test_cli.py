"""The command line: each command on a small preset folder, and one-line errors with exit status 2."""

import json
import sys

import numpy as np
import pytest

from odezoo import LMResNet
from odezoo.cli import main
from odezoo.data.images import DATASETS


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    model = LMResNet(depth=8, width=2, num_classes=10, image_shape=(28, 28, 1), mean=[0.286], std=[0.353])
    spec = DATASETS["fashion_mnist"]
    return model.save_pretrained(
        tmp_path_factory.mktemp("cli") / "tiny",
        metadata={"preset": "tiny", "dataset": "fashion_mnist", "class_names": list(spec.class_names)},
    )


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, *argv):
    """Runs a command that must fail: exit status 2 and exactly one line on stderr."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:  # argparse
        code = exit.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_info(capsys, folder):
    code, out, _ = run(capsys, "info", folder)
    info = json.loads(out)
    assert code == 0 and info["folder"] == str(folder) and info["class_name"] == "LMResNet"


def test_eval_on_the_bundled_sample(capsys, folder):
    code, out, _ = run(capsys, "eval", folder, "--split", "sample", "--limit", "50")
    result = json.loads(out)
    assert code == 0 and result["num_examples"] == 50 and result["dataset"] == "fashion_mnist"
    assert result["split"] == "sample" and result["loss"] > 0


def test_predict_samples_and_files(capsys, folder, tmp_path):
    import tensorflow as tf

    code, out, _ = run(capsys, "predict", folder, "--sample", "2", "--top-k", "2")
    results = json.loads(out)
    assert code == 0 and [r["input"] for r in results] == ["sample[0]", "sample[1]"]
    assert len(results[0]["top"]) == 2 and results[0]["label"] in DATASETS["fashion_mnist"].class_names
    image = tmp_path / "shirt.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.full((40, 30, 3), 200, np.uint8)))
    code, out, _ = run(capsys, "predict", folder, image)
    assert code == 0 and json.loads(out)[0]["input"] == str(image)


def test_simulate_shows_its_progress_on_a_terminal_only(capsys, tmp_path, monkeypatch):
    argv = ["simulate", "heat", "--n", "2", "--steps", "3", "--out", tmp_path]
    code, out, err = run(capsys, *argv)
    assert code == 0 and json.loads(out)["shape"] == [2, 4, 32, 32, 1] and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # stderr is a terminal, stdout a pipe
    code, out, err = run(capsys, *argv, "--overwrite")
    assert code == 0 and json.loads(out)["shape"] == [2, 4, 32, 32, 1]  # stdout holds the JSON alone
    assert "simulate 2 heat trajectories: 100%" in err and "3/3" in err


def test_unreadable_image(capsys, folder, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert "Cannot read image" in fails(capsys, "predict", folder, bad)
    assert "Cannot read image" in fails(capsys, "predict", folder, tmp_path)  # a folder, not an image
    line = fails(capsys, "predict", folder, tmp_path / "missing.png")
    assert line.endswith("missing.png; No such file or directory); give PNG, JPEG, BMP, GIF or WebP files.")
    assert "{{function_node" not in line  # TensorFlow's op names stay out of the message


@pytest.mark.parametrize(
    "argv,message",
    [
        (["eval"], "the following arguments are required: preset"),
        (["fly"], "invalid choice: 'fly'"),
        (["export", "x", "--format", "pb"], "argument --format: invalid choice: 'pb'"),
        (["eval", "lm_resnet20_fashion"], "Unknown preset 'lm_resnet20_fashion'"),
        (["info", "./missing"], "No preset folder at './missing'"),
        (["train", "lm_resnet_fmnist", "--workdir", "w"], "Unknown recipe 'lm_resnet_fmnist'"),
        (["train", "resnet20_fashion_mnist", "--set", "epochs=0", "--workdir", "w"], "`epochs` must be >= 1"),
        (["eval", "pde_net2_heat", "--attack", "pgd"], "--attack does not apply to pde_net2_heat, a pde"),
        (["eval", "pde_net2_heat", "--limit", "5"], "--limit does not apply to pde_net2_heat"),
        (["eval", "lm_resnet20_fashion_mnist", "--trajectories", "5"], "--trajectories does not apply"),
        (["eval", "resnet20_fashion_mnist", "--limit", "-5"], "--limit must be >= 0. Received: --limit -5"),
        (["predict", "lm_resnet20_fashion_mnist", "--top-k", "0"], "--top-k must be >= 1"),
        (["predict", "lm_resnet20_fashion_mnist", "--sample", "5000"], "odezoo bundles 1000 sample images"),
        (["info", "hf://"], "'' is not a Hub repository id: write hf://<org>/<name>"),
        (["info", "hf://a/b/c d"], "is not a Hub repository id"),
        (["info", ""], "No preset given"),
        (["simulate", "heat", "--noise", "-1", "--out", "x"], "`noise` must be a finite number >= 0"),
        (["simulate", "heat", "--noise", "inf", "--out", "x"], "Received: noise=inf"),
        (["simulate", "heat", "--seed", "-1", "--out", "x"], "`seed` must be >= 0. Received: seed=-1"),
        (["info", "LM_RESNET20_FASHION_MNIST"], "Did you mean 'lm_resnet20_fashion_mnist'"),
        (["train", "lm_resnet_fashion_mnist", "--set", "lr=0.1", "--workdir", "w"], "Unknown setting 'lr'"),
        (
            ["train", "lm_resnet_fashion_mnist", "--set", "epochs=ten", "--workdir", "w"],
            "Setting 'epochs' takes a int",
        ),
        (["train", "lm_resnet_fashion_mnist", "--set", "epochs", "--workdir", "w"], "--set takes KEY=VALUE"),
        (
            ["train", "lm_resnet_fashion_mnist", "--config", "nope.json", "--workdir", "w"],
            "Cannot read --config",
        ),
    ],
)
def test_user_errors_are_one_line(capsys, argv, message):
    assert message in fails(capsys, *argv)


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"epochs": 2.5}, "Setting 'epochs' takes a int. Received: 2.5 (float)"),
        ({"epochs": True}, "Setting 'epochs' takes a int. Received: True (bool)"),
        ({"scheme": 1}, "Setting 'scheme' takes a str. Received: 1 (int)"),
    ],
)
def test_config_file_values_of_the_wrong_type(capsys, tmp_path, settings, message):
    (tmp_path / "c.json").write_text(json.dumps(settings))
    argv = ["train", "resnet20_fashion_mnist", "--config", tmp_path / "c.json", "--workdir", tmp_path / "w"]
    assert message in fails(capsys, *argv)
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    "setting,message",
    [
        ("strategy=gpu", "Unknown strategy 'gpu'; choose one of"),
        ("learning_rate=nan", "`learning_rate` must be a finite number. Received: learning_rate=nan"),
        ("learning_rate=-0.1", "`learning_rate` must be > 0. Received: learning_rate=-0.1"),
        (
            "depth=21",
            "`depth` must be 6n + 2 (n >= 1) for basic blocks, e.g. 20, 32, 56, 110. Received: depth=21",
        ),
        (
            "scheme=LM",
            "`scheme` must be one of ('lm', 'euler', 'heun', 'midpoint', 'rk4', 'backward_euler'). "
            "Received: scheme='LM'",
        ),
        ("dataset=mnist", "Unknown dataset 'mnist'"),
    ],
)
def test_recipe_settings_are_checked_before_anything_is_written(capsys, tmp_path, setting, message):
    argv = ["train", "lm_resnet20_fashion_mnist", "--set", setting, "--workdir", tmp_path / "w"]
    assert message in fails(capsys, *argv)
    assert not (tmp_path / "w").exists()


def test_a_config_file_that_is_no_object_is_refused(capsys, tmp_path):
    (tmp_path / "c.json").write_text("[1, 2]")
    argv = ["train", "resnet20_fashion_mnist", "--config", tmp_path / "c.json", "--workdir", tmp_path / "w"]
    assert "holds a JSON list; write an object of settings" in fails(capsys, *argv)


def test_a_file_where_a_folder_belongs_is_named(capsys, tmp_path, folder):
    (tmp_path / "file.txt").write_text("mine")
    line = fails(capsys, "simulate", "heat", "--n", "1", "--out", tmp_path / "file.txt" / "sub")
    assert f"--out {tmp_path}/file.txt/sub lies inside {tmp_path}/file.txt, which is a file" in line
    line = fails(capsys, "export", folder, "--format", "saved_model", "--output-dir", tmp_path / "file.txt")
    assert f"--output-dir {tmp_path}/file.txt is a file; give a folder" in line
    assert (tmp_path / "file.txt").read_text() == "mine"


def test_an_unreadable_export_manifest_is_left_alone_and_nothing_exported(capsys, tmp_path, folder):
    (tmp_path / "MANIFEST.json").write_text("{oops")
    line = fails(capsys, "export", folder, "--format", "saved_model", "--output-dir", tmp_path)
    assert f"{tmp_path}/MANIFEST.json is not an export manifest (Expecting property name" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MANIFEST.json"]
    assert (tmp_path / "MANIFEST.json").read_text() == "{oops"


def test_info_on_a_folder_that_is_no_preset(capsys, tmp_path):
    (tmp_path / "notes.md").write_text("mine")
    assert f"{tmp_path} is not a preset folder" in fails(capsys, "info", tmp_path)


def test_push_refuses_an_incomplete_folder_before_uploading(capsys, tmp_path, folder):
    import shutil

    shutil.copytree(folder, tmp_path / "partial")
    (tmp_path / "partial" / "model.weights.h5").unlink()
    line = fails(capsys, "push", tmp_path / "partial", "org/name")
    assert "partial is missing model.weights.h5: it is incomplete" in line


def test_predict_refuses_sample_with_files(capsys, folder, tmp_path):
    import tensorflow as tf

    image = tmp_path / "shirt.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.full((28, 28, 1), 200, np.uint8)))
    line = fails(capsys, "predict", folder, image, "--sample", "3")
    assert (
        "--sample picks bundled images when no file is given; drop it or the files. Received: --sample 3"
        in line
    )


def test_eval_on_a_mismatched_dataset(capsys, folder):
    line = fails(capsys, "eval", folder, "--dataset", "cifar10")
    assert line.startswith("odezoo eval: error:") and "has (32, 32, 3)" in line


def test_export_option_mismatch(capsys, folder, tmp_path):
    line = fails(capsys, "export", folder, "--format", "onnx", "--quantize", "int8", "--output-dir", tmp_path)
    assert "Quantisation 'int8' is not offered for onnx" in line


def exits(capsys, *argv):
    """Runs a command that ends by `SystemExit` (--help, --version, --list): `(status, stdout, stderr)`."""
    with pytest.raises(SystemExit) as exit:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit.value.code, out, err


def test_version(capsys):
    from odezoo import __version__

    assert exits(capsys, "--version") == (0, f"odezoo {__version__}\n", "")


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """`odezoo info X | head -1` with more output than the pipe holds: no BrokenPipeError traceback,
    exit status 1 (Python's own on EPIPE)."""
    import subprocess

    history = [{"epoch": i, "loss": 1.0 / (i + 1), "stage": "unit"} for i in range(4000)]  # ~400 kB as JSON
    model = LMResNet(depth=8, width=2, num_classes=10, image_shape=(28, 28, 1))
    folder = model.save_pretrained(tmp_path / "long", metadata={"preset": "long", "history": history})
    command = f"{sys.executable} -m odezoo.cli info {folder} | head -1; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.stdout == "{\n" and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, (
        done.stderr[-3000:]
    )
    assert done.returncode == 1


def test_train_lists_the_recipes_and_a_recipes_settings(capsys):
    from odezoo.recipes import RECIPES, get_recipe

    code, out, _ = exits(capsys, "train", "--list")
    assert code == 0 and out.splitlines() == sorted(RECIPES)
    code, out, _ = exits(capsys, "train", "--list", "lm_resnet_fashion_mnist")  # an old name works too
    _, config = get_recipe("lm_resnet20_fashion_mnist")
    rows = [line.split() for line in out.splitlines()]
    assert code == 0 and rows[0] == ["setting", "type", "default"]
    assert rows[1:] == [[k, type(v).__name__, json.dumps(v)] for k, v in config.settings().items()]
    assert ["epochs", "int", "20"] in rows and ["scheme", "str", '"lm"'] in rows
    assert exits(capsys, "train", "lm_resnet20_fashion_mnist", "--list")[1] == out  # no --workdir needed
    code, _, err = exits(capsys, "train", "--list", "lm_resnet_fmnist")
    assert code == 2 and err.startswith("odezoo train: error: Unknown recipe 'lm_resnet_fmnist'")
    assert len(err.splitlines()) == 1
    code, out, _ = exits(capsys, "train", "--help")
    assert code == 0 and "--list [RECIPE]" in out


def test_an_option_several_tasks_declare_shows_each_ones_meaning(capsys, monkeypatch):
    """`--steps` is the attack's steps for a classifier and a fixed depth for a restoration model: the
    help says both, each with the tasks that take it."""
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option
    code, out, _ = exits(capsys, "eval", "--help")
    (steps,) = [line for line in out.splitlines() if line.lstrip().startswith("--steps")]
    assert (
        code == 0
        and "attack steps (default: 20 for CIFAR, 40 for Fashion-MNIST) [image_classification]" in steps
    )
    assert "; restoration steps: a fixed depth instead of the model's own choice [image_restoration]" in steps
    (limit,) = [line for line in out.splitlines() if line.lstrip().startswith("--limit")]
    assert limit.count("[") == 1 and "first N examples only (0: all) [image_classification, " in limit


def test_predict_takes_a_folder_of_images(capsys, folder, tmp_path):
    import tensorflow as tf

    images = tmp_path / "images"
    images.mkdir()
    for name in ("b.png", "a.jpg", "c.gif.txt"):
        encode = tf.io.encode_jpeg if name.endswith(".jpg") else tf.io.encode_png
        tf.io.write_file(str(images / name), encode(np.full((28, 28, 1), 90, np.uint8)))
    code, out, _ = run(capsys, "predict", folder, images, images / "b.png")
    assert code == 0
    assert [r["input"] for r in json.loads(out)] == [str(images / n) for n in ("a.jpg", "b.png", "b.png")]
    (tmp_path / "empty").mkdir()
    line = fails(capsys, "predict", folder, tmp_path / "empty")
    assert line == f"odezoo predict: error: The folder {tmp_path / 'empty'} holds no image files " + (
        "(PNG, JPEG, BMP, GIF or WebP)."
    )
