"""The image input every classifier family starts with."""

import keras
import numpy as np
from keras import layers


def image_inputs(image_shape, mean, std, dtype):
    """`(inputs, x)`: the `"images"` input of shape `image_shape` and the images normalised as
    `(x - mean) / std` by one constant affine layer (`"normalize"`, absent when `mean` is `None`),
    so exported artifacts take the same float images in [0, 1]."""
    if len(image_shape) != 3:
        raise ValueError(
            f"`image_shape` must be (height, width, channels). Received: image_shape={image_shape!r}"
        )
    if (mean is None) != (std is None):
        raise ValueError(f"Give both `mean` and `std` or neither. Received: mean={mean}, std={std}")
    input_dtype = None if dtype is None else keras.dtype_policies.get(dtype).variable_dtype
    inputs = keras.Input(shape=tuple(image_shape), name="images", dtype=input_dtype)
    if mean is None:
        return inputs, inputs
    scale = 1.0 / np.asarray(std, "float64")
    offset = -np.asarray(mean, "float64") * scale
    return inputs, layers.Rescaling(scale.tolist(), offset.tolist(), name="normalize", dtype=dtype)(inputs)
