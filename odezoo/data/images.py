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
from odezoo.errors import OdezooError

SAMPLE_FILE = Path(__file__).resolve().parent / "fashion_mnist_sample.npz"
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
    """Decodes a PNG/JPEG/BMP/GIF file to a float32 image in [0, 1] of shape `(height, width, channels)`."""
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=channels, expand_animations=False)
    except tf.errors.OpError as error:  # missing, a folder, not an image, ...
        reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", str(error).splitlines()[0])  # TF's op names
        raise OdezooError(
            f"Cannot read image {str(path)!r} ({reason}); give PNG, JPEG, BMP or GIF files."
        ) from None
    return image.numpy().astype("float32") / 255.0


def preprocess_images(images, shape):
    """What `odezoo predict` does to image files, as one batch a classifier takes: each image decoded
    (`read_image`), given the model's channels, resized (bilinear) to its height and width, as float32
    in [0, 1].

    Args:
        images: image files (PNG, JPEG, BMP, GIF; paths), or arrays `(height, width[, channels])`
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

    shape = tuple(shape.inputs[0].shape[1:]) if hasattr(shape, "inputs") else tuple(shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise OdezooError(f"Images are (height, width, 1 or 3 channels). Received: shape={shape}")
    if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim < 4):
        images = [images]
    decoded = [_image_array(image, shape[-1]) for image in images]
    if None in shape[:2]:
        return np.stack(decoded)
    return np.stack([tf.image.resize(image, shape[:2]).numpy() for image in decoded])


def _image_array(image, channels):
    """`image` (a file or an array) as float32 `(height, width, channels)` in [0, 1]."""
    import tensorflow as tf

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
    array = array[..., :3] if array.shape[-1] == 4 else array  # drop alpha, as decoding to RGB does
    if array.shape[-1] == channels:
        return array.astype("float32")
    convert = tf.image.rgb_to_grayscale if channels == 1 else tf.image.grayscale_to_rgb
    return convert(tf.convert_to_tensor(array, tf.float32)).numpy()


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
    try:
        return tfds_split("fashion_mnist", split, data_dir, download=False)
    except OdezooError:  # not prepared in TFDS: read the raw files
        pass
    prefix = "train" if split == "train" else "t10k"
    keras_cache = (
        Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets" / "fashion-mnist"
    )
    for folder in (keras_cache, DEBIAN_FASHION_MNIST):
        images = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels = folder / f"{prefix}-labels-idx1-ubyte.gz"
        if images.is_file() and labels.is_file():
            return _from_arrays(read_idx(images), read_idx(labels))
    raise OdezooError(
        f"Fashion-MNIST ({split}) was not found: not prepared in TFDS, not in the Keras cache "
        f"({keras_cache}), not at {DEBIAN_FASHION_MNIST}. Get it with `apt-get install "
        "dataset-fashion-mnist` (Debian/Ubuntu), `python -c 'import keras; "
        "keras.datasets.fashion_mnist.load_data()'` or `tfds build fashion_mnist`."
    )


def read_idx(path):
    """Reads a gzip'd IDX file (the MNIST format) into a uint8 array; images get a channel axis."""
    with gzip.open(path, "rb") as f:
        data = f.read()
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
