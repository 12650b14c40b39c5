"""Test helpers shared by the test suite and the benchmarks: the model harness and a
reference ResNet written the usual way in plain Keras."""

import json

import keras
import numpy as np
from keras import layers


def check_model(cls, init_kwargs, inputs, expected_shape, tmp_path):
    """Checks what every odezoo model must do; returns the model.

    Output shape; `get_config -> from_config` round trip (compared as JSON); `.keras`
    save/load and `save_pretrained -> from_pretrained` reproduce outputs; compiled
    `predict`; one finite `train_on_batch`.
    """
    model = cls(**init_kwargs)
    outputs = np.asarray(model(inputs, training=False))
    assert outputs.shape == tuple(expected_shape), outputs.shape

    config = model.get_config()
    rebuilt = cls.from_config(config)
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    serialized = keras.saving.serialize_keras_object(model)
    again = keras.saving.serialize_keras_object(keras.saving.deserialize_keras_object(serialized))
    assert json.dumps(again["config"], sort_keys=True) == json.dumps(serialized["config"], sort_keys=True)

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(inputs, training=False)), outputs, atol=1e-6)

    folder = model.save_pretrained(tmp_path / "preset")
    loaded = cls.from_pretrained(folder)
    np.testing.assert_array_equal(np.asarray(loaded(inputs, training=False)), outputs)

    model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError())
    np.testing.assert_allclose(model.predict(inputs, verbose=0), outputs, atol=1e-5)
    loss = model.train_on_batch(inputs, np.zeros_like(outputs))
    assert np.isfinite(loss)
    return model


def reference_resnet(depth, num_classes, image_shape, width=16, mean=None, std=None, padding="symmetric"):
    """A pre-activation CIFAR ResNet (basic blocks) in plain Keras, `x + f(x)` with `Add`.

    `padding="symmetric"` pads the input of every 3x3 convolution with `ZeroPadding2D(1)` and
    convolves `"valid"`, as the official PyTorch code (`padding=1`); `"same"` is Keras' `"same"`.
    Layer names match `LMResNet` so weights can be copied by name.
    """

    def conv(x, filters, size, stride, name):
        explicit = padding == "symmetric" and size == 3
        if explicit:
            x = layers.ZeroPadding2D(1)(x)
        return layers.Conv2D(
            filters, size, stride, padding="valid" if explicit else "same", use_bias=False, name=name
        )(x)

    def preact(x, filters, size, stride, name):
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        return conv(x, filters, size, stride, f"{name}_conv")

    n = (depth - 2) // 6
    inputs = keras.Input(image_shape)
    x = inputs
    if mean is not None:
        x = layers.Rescaling((1 / np.asarray(std)).tolist(), (-np.asarray(mean) / np.asarray(std)).tolist())(
            x
        )
    x = conv(x, width, 3, 1, "stem_conv")
    for stage in range(3):
        filters = width * 2**stage
        for j in range(n):
            name = f"stage{stage + 1}_block{j + 1}"
            stride = 2 if stage and not j else 1
            f = preact(preact(x, filters, 3, stride, f"{name}_1"), filters, 3, 1, f"{name}_2")
            shortcut = preact(x, filters, 1, stride, f"{name}_proj") if stride != 1 else x
            x = layers.Add()([shortcut, f])
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="final_bn")(x)
    x = layers.GlobalAveragePooling2D()(layers.ReLU()(x))
    return keras.Model(inputs, layers.Dense(num_classes, name="head")(x))


def copy_weights_by_name(source, target):
    """Copies the weights of every `target` layer with weights from the same-named `source` layer."""
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def conv2d_symmetric(x, kernel, stride):
    """NumPy convolution (no bias) of `x` (batch, height, width, channels) with `kernel` (k, k, in, out),
    zero-padded by `k // 2` pixels on each side as PyTorch's `padding=k // 2`: output pixel (i, j) sees
    the input window whose top-left corner is (stride * i - k // 2, stride * j - k // 2)."""
    k, pad = kernel.shape[0], kernel.shape[0] // 2
    padded = np.pad(np.asarray(x, "float64"), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = ((size + 2 * pad - k) // stride + 1 for size in x.shape[1:3])
    out = np.zeros((x.shape[0], height, width, kernel.shape[-1]))
    for a in range(k):
        for b in range(k):
            window = padded[
                :, a : a + stride * (height - 1) + 1 : stride, b : b + stride * (width - 1) + 1 : stride
            ]
            out += window @ np.asarray(kernel[a, b], "float64")
    return out


def check_symmetric_padding(model, images, atol=1e-5):
    """Checks every 3x3 convolution after a BN-ReLU (layers `<name>_relu` -> `<name>_conv`, the blocks of
    LMResNet, PreActResNet18 and WideResNet) against `conv2d_symmetric` of its input; returns how many
    were strided (a check must see some)."""
    names = {layer.name for layer in model.layers}
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, layers.Conv2D)
        and layer.kernel_size == (3, 3)
        and layer.name.removesuffix("_conv") + "_relu" in names
    ]
    relus = [model.get_layer(layer.name.removesuffix("_conv") + "_relu") for layer in convs]
    probe = keras.Model(model.inputs[0], [[relu.output, layer.output] for relu, layer in zip(relus, convs)])
    for layer, (x, y) in zip(convs, probe(images, training=False)):
        expected = conv2d_symmetric(np.asarray(x), layer.get_weights()[0], layer.strides[0])
        np.testing.assert_allclose(np.asarray(y), expected, atol=atol, err_msg=layer.name)
    return sum(layer.strides[0] != 1 for layer in convs)
