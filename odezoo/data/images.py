"""Image-classification data as `tf.data` pipelines (TensorFlow-specific).

Images come out as float32 in [0, 1] with shape `(height, width, channels)`; models
normalise internally. Sources: TensorFlow Datasets for CIFAR; for Fashion-MNIST, TFDS
if prepared, else the Keras dataset cache, else the Debian `dataset-fashion-mnist`
files; the split `"sample"` is a 1,000-image slice of the Fashion-MNIST test split that
ships with odezoo.
"""

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odezoo.data._tfds import tfds_split
from odezoo.errors import OdezooError, check_integer, warn

SAMPLE_FILE = Path(__file__).resolve().parent / "fashion_mnist_sample.npz"
# The image files `read_image` decodes (TensorFlow's decoders), by suffix where folders are scanned.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IMAGE_FORMATS = "PNG, JPEG, BMP, GIF or WebP"
# Largest difference between the channels of a pixel of an RGB image that is still a grey one (lossy
# formats, WebP's chroma, leave a grey level or two): converting it to grey is not reported.
GREY_TOLERANCE = 4 / 255
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class ImageDataset:
    """What a model needs to know about a data set: shape, classes, normalisation, augmentation."""

    name: str
    image_shape: tuple
    class_names: tuple
    mean: tuple
    std: tuple
    pad: int  # zero padding before the random crop of training images
    splits: tuple = ("train", "test")

    @property
    def num_classes(self):
        return len(self.class_names)


_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
DATASETS = {
    "fashion_mnist": ImageDataset(
        "fashion_mnist",
        (28, 28, 1),
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        (0.2860,),
        (0.3530,),
        pad=2,
        splits=("train", "test", "sample"),
    ),
    "cifar10": ImageDataset(
        "cifar10",
        (32, 32, 3),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        _CIFAR_MEAN,
        _CIFAR_STD,
        pad=4,
    ),
    "cifar100": ImageDataset(
        "cifar100", (32, 32, 3), tuple(f"class_{i}" for i in range(100)), _CIFAR_MEAN, _CIFAR_STD, pad=4
    ),
}


def get_dataset(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise OdezooError(f"Unknown dataset {name!r}; odezoo has {sorted(DATASETS)}.") from None


def load_split(name, split, *, data_dir=None, download=True):
    """Returns `(tf.data.Dataset of (uint8 image, int64 label), number of examples)`."""
    spec = get_dataset(name)
    if split not in spec.splits:
        raise OdezooError(f"Dataset {name!r} has splits {list(spec.splits)}. Received: split={split!r}")
    if split == "sample":
        if data_dir is not None:
            raise OdezooError(
                f"The sample split ships with odezoo; --data-dir / data_dir= does not apply to it. Received: "
                f"data_dir={str(data_dir)!r}"
            )
        with np.load(SAMPLE_FILE) as f:
            return _from_arrays(f["images"], f["labels"])
    if name == "fashion_mnist":
        return _fashion_mnist(split, data_dir)
    return tfds_split(name, split, data_dir, download)


def image_dataset(
    name, split, *, batch_size, training=False, limit=0, seed=0, data_dir=None, download=True, holdout=0,
    heldout=False,
):  # fmt: skip
    """A batched pipeline of float32 images in [0, 1] and integer labels.

    Args:
        name: a key of `DATASETS`.
        split: `"train"`, `"test"` (or `"sample"` for Fashion-MNIST).
        batch_size: global batch size.
        training: shuffle, augment (zero-pad + random crop + horizontal flip) and drop
            the last partial batch.
        limit: use only the first `limit` examples (0: all).
        seed: shuffling and augmentation seed.
        data_dir: TFDS data folder.
        download: let TFDS download and prepare CIFAR when it is missing.
        holdout: leave out the split's last `holdout` examples (a validation set carved from
            the training split), before `limit` applies.
        heldout: use only those last `holdout` examples instead.

    Returns:
        `(dataset, number of examples used)`.
    """
    import tensorflow as tf

    spec = get_dataset(name)
    batch_size = check_integer("batch_size", batch_size, 1)
    limit = check_integer("limit", limit)
    holdout = check_integer("holdout", holdout)
    ds, count = load_split(name, split, data_dir=data_dir, download=download)
    if holdout:
        if not 0 < holdout < count:
            raise OdezooError(
                f"Cannot hold out {holdout} of the {count} examples of {name} ({split}); "
                f"choose 1..{count - 1}. Received: holdout={holdout}"
            )
        kept = count - holdout
        ds, count = (ds.skip(kept), holdout) if heldout else (ds.take(kept), kept)
    if limit:
        ds, count = ds.take(limit), min(limit, count)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, tf.cast(y, tf.int32)))
    if training:
        ds = ds.cache().shuffle(min(count, 20_000), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda x, y: (_augment(x, spec.pad, seed), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE), count


def read_image(path, channels):
    """Decodes a PNG/JPEG/BMP/GIF/WebP file (an animation's first frame) to a float32 image in [0, 1] of
    shape `(height, width, channels)`: decoded in the file's own channels, then converted
    (`to_model_channels`), so grey GIF, BMP and WebP files read as grey PNGs do."""
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=0, expand_animations=False)
    except tf.errors.OpError as error:  # missing, a folder, not an image, ...
        reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", str(error).splitlines()[0])  # TF's op names
        raise OdezooError(
            f"Cannot read image {str(path)!r} ({reason}); give {IMAGE_FORMATS} files."
        ) from None
    return to_model_channels(image.numpy().astype("float32") / 255.0, channels, repr(str(path)))


def to_model_channels(image, channels, what="The image"):
    """A float32 image `(height, width, 1 to 4 channels)` in `channels` (1 or 3) channels: alpha dropped
    (grey + alpha, RGBA), grey repeated to RGB, RGB to grey by luma (`tf.image.rgb_to_grayscale`) with an
    `OdezooWarning` naming `what` when its channels differ by more than `GREY_TOLERANCE` (a colour
    image, not a grey one stored as RGB)."""
    import tensorflow as tf

    image = image[..., :-1] if image.shape[-1] in (2, 4) else image
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    if np.array_equal(image[..., :1], image[..., 1:2]) and np.array_equal(image[..., :1], image[..., 2:]):
        return image[..., :1]
    spread = float(np.ptp(image, axis=-1).max(initial=0))
    if spread > GREY_TOLERANCE:
        warn(
            f"{what} is in colour (its channels differ by up to {spread * 255:.0f} of 255 levels); converted "
            "to grey (luma) for a model that takes grey images."
        )
    return tf.image.rgb_to_grayscale(image).numpy()


def preprocess_images(images, shape):
    """What `odezoo predict` does to image files, as one batch a classifier takes: each image decoded
    (`read_image`), given the model's channels, resized (bilinear) to its height and width, as float32
    in [0, 1].

    Args:
        images: image files (PNG, JPEG, BMP, GIF, WebP; paths), or arrays `(height, width[, channels])`
            (uint8 in 0..255, or floats in [0, 1]), or a batch of them; one path or array alone is a
            batch of one.
        shape: the model (its input shape) or `(height, width, channels)`.

    Returns:
        float32 array `(batch, height, width, channels)`.

    Example:
        >>> model = odezoo.load("lm_resnet20_fashion_mnist")
        >>> model.predict(odezoo.preprocess_images(["shoe.png"], model))
    """
    import tensorflow as tf

    if isinstance(shape, str):
        raise OdezooError(
            f"`shape` is the model (odezoo.load({shape!r})) or (height, width, channels), not a preset "
            f"name. Received: shape={shape!r}"
        )
    shape = tuple(shape.inputs[0].shape[1:]) if hasattr(shape, "inputs") else tuple(shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise OdezooError(f"Images are (height, width, 1 or 3 channels). Received: shape={shape}")
    if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim < 4):
        images = [images]
    if len(images) == 0:
        raise OdezooError("`images` is empty: give at least one image file or array. Received: images=[]")
    decoded = [_image_array(image, shape[-1], index) for index, image in enumerate(images)]
    if None in shape[:2]:
        return np.stack(decoded)
    return np.stack([tf.image.resize(image, shape[:2]).numpy() for image in decoded])


def _image_array(image, channels, index):
    """`image` (a file or an array, number `index` of the batch) as float32 `(height, width, channels)` in
    [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, channels)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or array.dtype.kind not in "uif":
        raise OdezooError(
            f"An image array is (height, width[, 1, 3 or 4 channels]) of numbers. Received: shape "
            f"{array.shape}, dtype {array.dtype}"
        )
    if array.dtype.kind != "f":  # 8-bit, as a decoded file is
        if array.size and (array.min() < 0 or array.max() > 255):
            raise OdezooError(f"Integer images hold 0..255. Received: {array.min()}..{array.max()}")
        array = array.astype("float32") / 255.0
    elif array.size and not (np.nanmin(array) >= 0 and np.nanmax(array) <= 1):
        raise OdezooError(
            f"Float images hold values in [0, 1]. Received: image {index} in "
            f"[{np.nanmin(array):g}, {np.nanmax(array):g}]; divide 0..255 images by 255."
        )
    return to_model_channels(array.astype("float32"), channels, f"Image {index}")


def _augment(image, pad, seed):
    import tensorflow as tf

    shape = image.shape
    image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    image = tf.image.random_crop(image, shape, seed=seed)
    return tf.image.random_flip_left_right(image, seed=seed)


def _from_arrays(images, labels):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64))), len(labels)


def _fashion_mnist(split, data_dir):
    """Fashion-MNIST from TFDS, else the IDX files of the Keras cache or the Debian package; with
    `data_dir`, from that folder only (TFDS's data folder, or one holding the IDX files)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise OdezooError(
            f"--data-dir / data_dir= {str(data_dir)!r} is not a folder: give TFDS's data folder or a folder "
            "of the Fashion-MNIST IDX files, or leave it out to read the data from where odezoo finds it."
        )
    try:
        return tfds_split("fashion_mnist", split, data_dir, download=False)
    except OdezooError:  # not prepared in TFDS: read the raw files
        pass
    prefix = "train" if split == "train" else "t10k"
    keras_cache = (
        Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets" / "fashion-mnist"
    )
    for folder in (Path(data_dir),) if data_dir is not None else (keras_cache, DEBIAN_FASHION_MNIST):
        images = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels = folder / f"{prefix}-labels-idx1-ubyte.gz"
        if images.is_file() and labels.is_file():
            return _from_arrays(read_idx(images), read_idx(labels))
    if data_dir is not None:
        raise OdezooError(
            f"--data-dir / data_dir= {str(data_dir)!r} holds neither Fashion-MNIST prepared by TFDS nor its "
            f"IDX files ({prefix}-images-idx3-ubyte.gz, {prefix}-labels-idx1-ubyte.gz); point it at one, "
            "or leave it out to read the data from where odezoo finds it."
        )
    raise OdezooError(
        f"Fashion-MNIST ({split}) was not found: not prepared in TFDS, not in the Keras cache "
        f"({keras_cache}), not at {DEBIAN_FASHION_MNIST}. Get it with `apt-get install "
        "dataset-fashion-mnist` (Debian/Ubuntu), `python -c 'import keras; "
        "keras.datasets.fashion_mnist.load_data()'` or `tfds build fashion_mnist`."
    )


def read_idx(path):
    """Reads a gzip'd IDX file (the MNIST format) into a uint8 array; images get a channel axis."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except gzip.BadGzipFile:
        data = b""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise OdezooError(
            f"{path} is not an unsigned-byte IDX file; the download is damaged: fetch it again."
        )
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise OdezooError(
            f"{path} is truncated ({len(data) - offset} of {int(np.prod(shape))} bytes); fetch it again."
        )
    array = np.frombuffer(data, np.uint8, offset=offset).reshape(shape)
    return array[..., None] if ndim == 3 else array
