"""The image input every classifier family starts with."""

import keras
import numpy as np
from keras import layers

from odezoo.errors import OdezooError, check_dtype


def image_inputs(image_shape, mean, std, dtype):
    """`(inputs, x)`: the `"images"` input of shape `image_shape` and the images normalised as
    `(x - mean) / std` by one constant affine layer (`"normalize"`, absent when `mean` is `None`),
    so exported artifacts take the same float images in [0, 1]. Raises `OdezooError` for arguments
    that do not fit (`mean` / `std` one finite number per channel, a float `dtype`)."""
    if not isinstance(image_shape, list | tuple) or len(image_shape) != 3:
        raise OdezooError(
            f"`image_shape` must be (height, width, channels). Received: image_shape={image_shape!r}"
        )
    if (mean is None) != (std is None):
        raise OdezooError(f"Give both `mean` and `std` or neither. Received: mean={mean}, std={std}")
    if mean is not None:
        _check_per_channel("mean", mean, image_shape[-1])
        _check_per_channel("std", std, image_shape[-1], positive=True)
    check_dtype(dtype)
    input_dtype = None if dtype is None else keras.dtype_policies.get(dtype).variable_dtype
    inputs = keras.Input(shape=tuple(image_shape), name="images", dtype=input_dtype)
    if mean is None:
        return inputs, inputs
    scale = 1.0 / np.asarray(std, "float64")
    offset = -np.asarray(mean, "float64") * scale
    return inputs, layers.Rescaling(scale.tolist(), offset.tolist(), name="normalize", dtype=dtype)(inputs)


def _check_per_channel(name, values, channels, positive=False):
    """Raises unless `values` is a list of `channels` finite numbers (positive ones if `positive`)."""
    try:
        array = np.asarray(values, "float64")
    except (TypeError, ValueError):
        array = np.zeros(0)
    fits = array.shape == (channels,) and np.isfinite(array).all() and (not positive or (array > 0).all())
    if not fits:
        what = "positive numbers" if positive else "numbers"
        example = [0.5] * (channels or 1)
        raise OdezooError(
            f"`{name}` must be a list of {channels} finite {what}, one per channel of the images, e.g. "
            f"{name}={example}. Received: {name}={values!r}"
        )
