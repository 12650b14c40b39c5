"""Image-restoration data: degradations, clean images, training patches (TensorFlow-specific;
NumPy only at import).

Degradations, as the benchmarks define them: additive Gaussian noise of standard deviation
`sigma / 255` on images in [0, 1], not clipped; JPEG at quality `q` (the image rounded to 8 bits,
encoded by `tf.io.encode_jpeg` and decoded).

Clean images (`clean_images`), float32 in [0, 1]:
- `"skimage_photos"`: the natural photographs bundled with scikit-image (no download), split into
  train and test by image (`PHOTOS`, our fixed choice: the test split holds the classic cameraman,
  astronaut, cat, coins and text images);
- `"sklearn_photos"`: the two sample photographs bundled with scikit-learn (china, flower; no
  download), whatever the split: images of other kinds and another source than scikit-image's;
- `"div2k"`: the high-resolution images of TensorFlow Datasets' `div2k` (train, validation = test);
- a folder of image files (`IMAGE_SUFFIXES`: all of them, whatever the split);
- an image-classification data set of `odezoo.data.images` (`fashion_mnist`, `cifar10`, ...).
Every image is converted to the channels asked for: grey to colour by repeating, colour to grey
by luminance (`tf.image.rgb_to_grayscale`).
"""

from pathlib import Path

import numpy as np

from odezoo.errors import OdezooError

SKIMAGE_PHOTOS = "skimage_photos"
SKLEARN_PHOTOS = "sklearn_photos"
DIV2K = "div2k"
# Natural photographs of `skimage.data` that load offline, by split; synthetic images (checkerboard,
# logo, ...) and near-duplicates (`cat` is `chelsea`, the right view of `stereo_motorcycle`) are left out.
PHOTOS = {
    "train": (
        "brick", "cell", "clock", "coffee", "grass", "gravel", "hubble_deep_field", "immunohistochemistry",
        "microaneurysms", "moon", "page", "retina", "rocket", "stereo_motorcycle",
    ),
    "test": ("astronaut", "camera", "chelsea", "coins", "text"),
}  # fmt: skip


def add_noise(images, sigma, seed):
    """`images + N(0, (sigma / 255)^2)` per pixel, not clipped, reproducible by `seed`."""
    rng = np.random.default_rng(seed)
    return (images + rng.normal(0.0, sigma / 255.0, np.shape(images))).astype("float32")


def jpeg(images, quality):
    """Each image of the batch `images` (1 or 3 channels, [0, 1]) JPEG-compressed at `quality`."""
    import tensorflow as tf

    return np.stack([_jpeg(tf.constant(image, tf.float32), quality).numpy() for image in images])


def degrade(images, *, sigma=None, quality=None, seed=0):
    """`images` with Gaussian noise of level `sigma` (0..255 scale) or JPEG at `quality` (1..100)."""
    check_degradation(sigma, quality)
    return jpeg(images, quality) if quality is not None else add_noise(images, sigma, seed)


def check_degradation(sigma=None, quality=None):
    """Raises unless exactly one of `sigma` (>= 0) and `quality` (an integer in 1..100) is given."""
    if (sigma is None) == (quality is None):
        raise OdezooError(
            f"Give one degradation: `sigma` (Gaussian noise) or `quality` (JPEG). Received: sigma={sigma}, "
            f"quality={quality}"
        )
    if quality is not None and (isinstance(quality, bool) or quality not in range(1, 101)):
        raise OdezooError(f"JPEG `quality` must be an integer in 1..100. Received: quality={quality!r}")
    if sigma is not None and not sigma >= 0:
        raise OdezooError(f"`sigma` must be >= 0 (on the 0..255 scale). Received: sigma={sigma}")


def to_channels(images, channels):
    """Images (`(..., height, width, 1 or 3)` float) with `channels` channels: grey repeated to colour,
    colour to grey by luminance."""
    import tensorflow as tf

    have = images.shape[-1]
    if have == channels:
        return images
    if channels == 3 and have == 1:
        return tf.image.grayscale_to_rgb(tf.convert_to_tensor(images))
    if channels == 1 and have == 3:
        return tf.image.rgb_to_grayscale(tf.convert_to_tensor(images))
    raise OdezooError(f"Cannot convert images with {have} channels to {channels}; give grey or RGB images.")


def photographs(split, channels):
    """The scikit-image photographs of `PHOTOS[split]`, as a list of float32 images in [0, 1]."""
    if split not in PHOTOS:
        raise OdezooError(f"{SKIMAGE_PHOTOS} has splits {list(PHOTOS)}. Received: split={split!r}")
    try:
        import skimage.data
    except ImportError:
        raise OdezooError(
            f"{SKIMAGE_PHOTOS} needs scikit-image: `pip install 'odezoo[restoration]'`."
        ) from None
    images = []
    for name in PHOTOS[split]:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
        image = image[..., None] if image.ndim == 2 else image
        images.append(np.asarray(to_channels(image.astype("float32") / 255.0, channels)))
    return images


def sklearn_photographs(channels):
    """scikit-learn's sample photographs (`load_sample_images`), as a list of float32 images in [0, 1]."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise OdezooError(f"{SKLEARN_PHOTOS} needs scikit-learn: `pip install scikit-learn`.") from None
    return [
        np.asarray(to_channels(image.astype("float32") / 255.0, channels))
        for image in load_sample_images().images
    ]


def folder_images(folder, channels):
    """The image files of `folder` (sorted by name), as a list of float32 images in [0, 1]."""
    from odezoo.data.images import IMAGE_SUFFIXES, read_image

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise OdezooError(f"Folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
    return [read_image(path, channels) for path in paths]


def clean_images(dataset, split="test", *, channels, limit=0, data_dir=None, download=False):
    """Clean images of a data set (see the module docstring), float32 in [0, 1] with `channels` channels.

    Returns:
        `(tf.data.Dataset of single images, number of images)`; the images' shapes are fixed
        for an image-classification data set and free otherwise.
    """
    import tensorflow as tf

    from odezoo.data.images import DATASETS, image_dataset

    if dataset in DATASETS:
        ds, count = image_dataset(dataset, split, batch_size=256, limit=limit, data_dir=data_dir)
        return ds.unbatch().map(lambda image, _: to_channels(image, channels)), count
    if dataset == DIV2K:
        from odezoo.data._tfds import tfds_split

        ds, count = tfds_split(DIV2K, "validation" if split == "test" else split, data_dir, download)
        ds = ds.map(lambda _, hr: to_channels(tf.cast(hr, tf.float32) / 255.0, channels))
    elif dataset in (SKIMAGE_PHOTOS, SKLEARN_PHOTOS) or Path(dataset).is_dir():
        images = (
            photographs(split, channels) if dataset == SKIMAGE_PHOTOS
            else sklearn_photographs(channels) if dataset == SKLEARN_PHOTOS
            else folder_images(dataset, channels)
        )  # fmt: skip
        spec = tf.TensorSpec((None, None, channels), tf.float32)
        ds, count = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=spec), len(images)
    else:
        raise OdezooError(
            f"Unknown restoration data {dataset!r}: give {SKIMAGE_PHOTOS!r}, {DIV2K!r}, {SKLEARN_PHOTOS!r}, "
            f"a folder of images, or one of {sorted(DATASETS)}."
        )
    if limit:
        ds, count = ds.take(limit), min(limit, count)
    return ds, count


def training_patches(
    images, *, patch_size=40, batch_size=32, sigma=None, quality=None, patches_per_image=8, seed=0,
    scales=(1.0,),
):  # fmt: skip
    """An endless pipeline of `(degraded, clean, level)` batches for training a restorer.

    Each image of `images` (a dataset of clean images, e.g. `clean_images(...)[0]`; those smaller than
    `patch_size` are skipped) gives `patches_per_image` random crops of `patch_size` times a random one
    of `scales` (>= 1; capped by the image's size), shrunk to `patch_size` (area averaging), each under
    a random one of the 8 symmetries of the square (flips and quarter turns) and degraded at its own level,
    drawn uniformly from the range `sigma=(low, high)` (noise, 0..255 scale) or from the integers
    `quality=(low, high)` (JPEG); `level` is that sigma or quality. The stream is shuffled and
    reproducible by `seed`.
    """
    import tensorflow as tf

    if sigma is not None and quality is not None:
        check_degradation(sigma, quality)  # raises: one degradation only
    kind, levels = ("quality", quality) if quality is not None else ("sigma", sigma)
    try:
        low, high = levels
    except (TypeError, ValueError):
        raise OdezooError(f"`{kind}` must be a range (low, high). Received: {kind}={levels!r}") from None
    for level in (low, high):
        check_degradation(**{kind: level})
    if low > high:
        raise OdezooError(
            f"`{kind}` must be a range (low, high) with low <= high. Received: {kind}={levels!r}"
        )
    if not scales or min(scales) < 1:
        raise OdezooError(f"`scales` must be crop scales >= 1. Received: scales={scales!r}")
    sizes = tf.constant([round(patch_size * s) for s in scales], tf.int32)

    def patch(index, image):
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), index]), 4)
        pick = tf.random.stateless_uniform((), seeds[0][::-1], 0, len(scales), tf.int32)
        size = tf.minimum(sizes[pick], tf.reduce_min(tf.shape(image)[:2]))
        crop = tf.image.stateless_random_crop(image, tf.stack([size, size, image.shape[-1]]), seeds[0])
        crop = tf.image.resize(crop, (patch_size, patch_size), "area")
        turn = tf.random.stateless_uniform((), seeds[1], 0, 8, tf.int32)
        crop = tf.image.rot90(crop, turn % 4)
        crop = tf.cond(turn >= 4, lambda: tf.image.flip_left_right(crop), lambda: crop)
        if quality is not None:
            level = tf.random.stateless_uniform((), seeds[2], low, high + 1, tf.int32)
            return _jpeg(crop, level), crop, tf.cast(level, tf.float32)
        level = tf.random.stateless_uniform((), seeds[2], low, high)
        return crop + level / 255.0 * tf.random.stateless_normal(tf.shape(crop), seeds[3]), crop, level

    large = images.filter(lambda image: tf.reduce_min(tf.shape(image)[:2]) >= patch_size)
    ds = large.repeat().flat_map(lambda image: tf.data.Dataset.from_tensors(image).repeat(patches_per_image))
    ds = ds.enumerate().map(patch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.shuffle(64 * patches_per_image, seed=seed).batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _jpeg(image, quality):
    """A float image in [0, 1] rounded to 8 bits, JPEG-encoded at `quality` (an int or a scalar
    tensor: `tf.io.encode_jpeg` and its variable-quality form agree) and decoded."""
    import tensorflow as tf

    pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)
    return tf.cast(tf.image.adjust_jpeg_quality(pixels, quality), tf.float32) / 255.0
