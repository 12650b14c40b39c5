"""The convolutions of the residual classifiers (LMResNet, PreActResNet18, WideResNet), padded as the
official PyTorch code pads them (docs/papers.md#padding)."""

import keras
from keras import layers

PADDINGS = ("symmetric", "same")
PADDING_CHANGE = (
    "padding='symmetric' pads every 3x3 convolution by one pixel on each side, also the strided ones, as "
    "the official PyTorch code does; padding='same' (Keras', what configs saved without a `padding` key "
    "mean) pads a stride-2 convolution of an even-sized input 0 pixels before and 1 after, which shifts "
    "its windows by one pixel"
)


def check_padding(padding):
    """Raises unless `padding` is one of `PADDINGS`."""
    if padding not in PADDINGS:
        raise ValueError(f"`padding` must be one of {PADDINGS}. Received: padding={padding!r}")


def conv(x, filters, kernel_size, stride, *, padding, name, dtype):
    """A `kernel_size` x `kernel_size` convolution of `x` without bias (layer `name`), initialised as the
    official code does: N(0, sqrt(2 / (k * k * filters))).

    `padding="symmetric"` is PyTorch's `padding=kernel_size // 2`: that many zeros on each side. With
    stride 1 (odd kernels) Keras' `"same"` pads exactly so; a strided convolution gets the zeros from a
    `ZeroPadding2D` layer (`name + "_pad"`) and no padding of its own. `padding="same"` is Keras' `"same"`
    throughout (the layout of presets saved before `padding` existed).
    """
    for layer in conv_layers(filters, kernel_size, stride, padding=padding, name=name, dtype=dtype):
        x = layer(x)
    return x


def conv_layers(filters, kernel_size, stride, *, padding, name, dtype):
    """The layers of `conv`, in order and not yet called (for a convolution applied more than once)."""
    explicit = padding == "symmetric" and stride != 1 and kernel_size > 1
    pad = [layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad", dtype=dtype)] if explicit else []
    return [
        *pad,
        layers.Conv2D(
            filters,
            kernel_size,
            strides=stride,
            padding="valid" if explicit else "same",
            use_bias=False,
            kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
            name=name,
            dtype=dtype,
        ),
    ]
