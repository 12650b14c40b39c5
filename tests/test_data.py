"""Data pipelines: TFDS loaders on mock data, and the Fashion-MNIST fallbacks on real files."""

import gzip

import numpy as np
import pytest
import tensorflow_datasets as tfds

from odezoo import OdezooError
from odezoo.data import DATASETS, image_dataset, load_split
from odezoo.data import images as images_module


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def no_fashion_mnist(tmp_path, monkeypatch):
    """No prepared TFDS copy (unless mocked), an empty Keras cache and no Debian files."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(images_module, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    return tmp_path


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "fashion_mnist"])
def test_tfds_pipelines_on_mock_data(name, no_fashion_mnist):
    spec = DATASETS[name]
    with tfds.testing.mock_data(num_examples=20):
        ds, count = image_dataset(name, "train", batch_size=8, training=True)
        batches = list(ds)
    assert count == 20 and len(batches) == 2  # the partial batch is dropped in training
    x, y = batches[0]
    assert x.shape == (8, *spec.image_shape) and x.dtype == "float32"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    assert y.dtype == "int32" and np.all((y.numpy() >= 0) & (y.numpy() < spec.num_classes))


def test_augmentation_crops_and_flips_but_keeps_shape():
    image = np.arange(28 * 28, dtype=np.float32).reshape(28, 28, 1) / 784
    out = np.stack([images_module._augment(image, 2, seed=None).numpy() for _ in range(8)])
    assert out.shape == (8, 28, 28, 1)
    assert any(not np.array_equal(o, image) for o in out)


def test_keras_cache_fallback(no_fashion_mnist):
    folder = no_fashion_mnist / "keras" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", np.full((3, 28, 28), 255))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([4, 5, 6]))
    ds, count = image_dataset("fashion_mnist", "test", batch_size=2)
    x, y = next(iter(ds))
    assert count == 3 and x.shape == (2, 28, 28, 1) and float(x[0, 0, 0, 0]) == 1.0
    assert list(y.numpy()) == [4, 5]


def test_holdout_splits_the_training_set_into_disjoint_parts(no_fashion_mnist):
    folder = no_fashion_mnist / "keras" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    _write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(5))

    def labels(**kwargs):
        ds, count = image_dataset("fashion_mnist", "train", batch_size=8, **kwargs)
        return count, [int(v) for _, y in ds for v in y]

    assert labels(holdout=2) == (3, [0, 1, 2])
    assert labels(holdout=2, heldout=True) == (2, [3, 4])
    assert labels(holdout=2, limit=1) == (1, [0])
    with pytest.raises(OdezooError) as error:
        labels(holdout=5)
    assert str(error.value) == (
        "Cannot hold out 5 of the 5 examples of fashion_mnist (train); choose 1..4. Received: holdout=5"
    )


@pytest.mark.skipif(
    not images_module.DEBIAN_FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist"
)
def test_debian_files():
    ds, count = load_split("fashion_mnist", "test")
    assert count == 10_000
    labels = np.array([int(y) for _, y in ds])
    assert np.bincount(labels).tolist() == [1000] * 10


def test_missing_fashion_mnist_says_how_to_get_it(no_fashion_mnist):
    with pytest.raises(OdezooError, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion_mnist", "train")


def test_unreachable_cifar_says_what_to_do(tmp_path):
    with pytest.raises(OdezooError, match="tfds build cifar10"):
        load_split("cifar10", "test", data_dir=str(tmp_path), download=False)


def test_bundled_sample_split():
    ds, count = load_split("fashion_mnist", "sample")
    labels = np.array([int(y) for _, y in ds])
    assert count == 1000 and np.bincount(labels).tolist() == [100] * 10


def test_truncated_idx_file(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(OdezooError, match="truncated"):
        images_module.read_idx(path)


@pytest.mark.parametrize(
    "args,message",
    [(("mnist", "train"), "Unknown dataset 'mnist'"), (("cifar10", "sample"), "Received: split='sample'")],
)
def test_bad_names(args, message):
    with pytest.raises(OdezooError, match=message):
        load_split(*args)
