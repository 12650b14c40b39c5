"""Restoration data: the degradations' statistics, the photographs' split by image, the training
patches, and the sources (a folder, TFDS div2k on mock data, the classification data sets)."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from odezoo import OdezooError
from odezoo.data.restoration import (
    PHOTOS,
    add_noise,
    clean_images,
    degrade,
    jpeg,
    photographs,
    to_channels,
    training_patches,
)
from odezoo.tasks.image_restoration import psnr


@pytest.fixture(scope="module")
def camera():
    """The cameraman (a test photograph), 128x128 from its centre, grey, in [0, 1]."""
    image = photographs("test", 1)[PHOTOS["test"].index("camera")]
    return image[None, 192:320, 192:320]


def test_noise_has_the_level_on_the_255_scale_and_is_not_clipped():
    clean = np.full((2, 128, 128, 1), 0.9, "float32")
    noise = add_noise(clean, 30.0, seed=1) - clean
    assert abs(noise.mean()) < 2e-3 and noise.std() == pytest.approx(30 / 255, rel=0.02)
    assert (clean + noise).max() > 1.2  # no clipping: the benchmark protocol
    np.testing.assert_array_equal(add_noise(clean, 30.0, seed=1), add_noise(clean, 30.0, seed=1))
    assert not np.array_equal(add_noise(clean, 30.0, seed=1), add_noise(clean, 30.0, seed=2))
    np.testing.assert_array_equal(degrade(clean, sigma=0.0), clean)


def test_jpeg_at_quality_100_is_nearly_the_identity_and_at_5_is_not(camera):
    fine, coarse = psnr(camera, jpeg(camera, 100))[0], psnr(camera, jpeg(camera, 5))[0]
    assert fine > 40 and coarse < 30  # about 41 and 27 dB
    pixels = np.round(camera[0] * 255).astype("uint8")  # the same as TensorFlow's encoder and decoder
    expected = tf.io.decode_jpeg(tf.io.encode_jpeg(pixels, quality=20)).numpy() / 255
    np.testing.assert_allclose(degrade(camera, quality=20)[0], expected, atol=1e-7)
    assert jpeg(np.repeat(camera, 3, axis=-1), 50).shape == (1, 128, 128, 3)


@pytest.mark.parametrize(
    "levels,message",
    [
        ({}, "Give one degradation: `sigma` .* or `quality` .*. Received: sigma=None, quality=None"),
        ({"sigma": 10, "quality": 10}, "Give one degradation"),
        ({"quality": 0}, r"JPEG `quality` must be an integer in 1..100. Received: quality=0"),
        ({"quality": 50.5}, r"Received: quality=50.5"),
        ({"sigma": -1}, r"`sigma` must be >= 0 \(on the 0..255 scale\). Received: sigma=-1"),
    ],
)
def test_degradation_levels_are_checked(levels, message):
    with pytest.raises(OdezooError, match=message):
        degrade(np.zeros((1, 8, 8, 1), "float32"), **levels)


def test_the_photographs_are_split_by_image():
    assert not set(PHOTOS["train"]) & set(PHOTOS["test"])
    digests = {
        split: {hashlib.sha256(image.tobytes()).hexdigest() for image in photographs(split, 1)}
        for split in PHOTOS
    }
    assert len(digests["train"]) == len(PHOTOS["train"]) and len(digests["test"]) == len(PHOTOS["test"])
    assert not digests["train"] & digests["test"]
    colour = photographs("test", 3)
    assert all(image.shape[-1] == 3 and image.dtype == np.float32 and image.max() <= 1 for image in colour)
    with pytest.raises(
        OdezooError, match=r"skimage_photos has splits \['train', 'test'\]. Received: split='val'"
    ):
        photographs("val", 1)


def test_channel_conversion():
    grey = np.random.default_rng(0).uniform(0, 1, (4, 4, 1)).astype("float32")
    colour = np.asarray(to_channels(grey, 3))
    np.testing.assert_array_equal(colour, np.repeat(grey, 3, axis=-1))
    np.testing.assert_allclose(np.asarray(to_channels(colour, 1)), grey, rtol=2e-4)  # weights sum to 0.9999


def test_training_patches(camera):
    images = tf.data.Dataset.from_tensors(camera[0]).concatenate(tf.data.Dataset.from_tensors(camera[0, :20]))
    batches = training_patches(images, patch_size=32, batch_size=16, sigma=(10, 50), seed=3)
    degraded, clean, level = (b.numpy() for b in next(iter(batches)))
    assert degraded.shape == clean.shape == (16, 32, 32, 1) and level.shape == (16,)
    assert np.all((10 <= level) & (level <= 50)) and level.std() > 5  # one level per patch
    np.testing.assert_allclose(np.std(degraded - clean, axis=(1, 2, 3)), level / 255, rtol=0.15)
    again = next(iter(training_patches(images, patch_size=32, batch_size=16, sigma=(10, 50), seed=3)))
    np.testing.assert_array_equal(again[0].numpy(), degraded)  # reproducible by the seed
    # every patch is a crop of the photograph under one of the 8 symmetries of the square
    views = [np.rot90(v, k) for v in (camera[0], camera[0][:, ::-1]) for k in range(4)]
    windows = {view[i : i + 32, j : j + 32].tobytes() for view in views for i in range(97) for j in range(97)}
    assert all(patch.tobytes() in windows for patch in clean)

    _, clean, quality = (
        b.numpy() for b in next(iter(training_patches(images, patch_size=32, quality=(5, 9))))
    )
    assert set(quality.tolist()) <= {5.0, 6.0, 7.0, 8.0, 9.0}
    with pytest.raises(OdezooError, match=r"`sigma` must be a range \(low, high\). Received: sigma=25"):
        training_patches(images, sigma=25)
    with pytest.raises(OdezooError, match=r"with low <= high. Received: quality=\(40, 10\)"):
        training_patches(images, quality=(40, 10))


def test_a_folder_of_images(tmp_path):
    for i, shape in enumerate([(10, 12, 3), (9, 7, 1)]):
        pixels = np.random.default_rng(i).integers(0, 256, shape, dtype="uint8")
        tf.io.write_file(str(tmp_path / f"{i}.png"), tf.io.encode_png(pixels))
    (tmp_path / "notes.txt").write_text("not an image")
    ds, count = clean_images(str(tmp_path), channels=1)
    assert count == 2 and [x.shape for x in ds.as_numpy_iterator()] == [(10, 12, 1), (9, 7, 1)]
    (tmp_path / "broken.jpg").write_text("not a jpeg")
    with pytest.raises(OdezooError, match=r"Cannot read image '.*broken.jpg' .*; give PNG, JPEG, BMP"):
        clean_images(str(tmp_path), channels=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OdezooError, match=r"holds no image files"):
        clean_images(str(empty), channels=1)


def test_div2k_and_the_classification_data_sets():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=3):
        ds, count = clean_images("div2k", "test", channels=3)
        images = list(ds.as_numpy_iterator())
    assert count == 3 and all(
        x.ndim == 3 and x.shape[-1] == 3 and 0 <= x.min() <= x.max() <= 1 for x in images
    )
    ds, count = clean_images("fashion_mnist", "sample", channels=3, limit=4)
    assert count == 4 and ds.element_spec.shape == (28, 28, 3)
    with pytest.raises(
        OdezooError, match=r"Unknown restoration data 'bsd68': give 'skimage_photos', 'div2k'"
    ):
        clean_images("bsd68", channels=1)
