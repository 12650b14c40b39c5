"""Feature extraction for the image classifiers (timm's `features_only`, keras-hub's backbones): a Keras
model sharing the classifier's layers and weights that returns its per-stage feature maps and the pooled
features its head takes."""

import keras

POOLED = "pooled"


class FeatureExtractorMixin:
    """Gives a functional image classifier `feature_extractor()`. The class names the layers whose
    outputs are its stage features in `feature_layers()`."""

    def feature_layers(self):
        """`{feature name: layer name}`, in the order of the network (e.g. `{"stem": "conv1",
        "stage_1": "stage1_block2_add", ...}`); the layers must each be called once."""
        raise NotImplementedError

    def feature_extractor(self, name=None):
        """A `keras.Model` on this model's inputs returning a dict: each of `feature_layers()` by its
        name, and `"pooled"`, the features the head (layer `"head"`) maps to the logits (the output of
        a model built with `num_classes=None`). It shares this model's layers, so its weights: training
        or loading one changes the other. For transfer learning: `features["pooled"]` feeds a new head;
        `model.get_layer("head")(features["pooled"])` are the model's logits."""
        return feature_extractor(self, self.feature_layers(), name=name or f"{self.name}_features")


def feature_extractor(model, layer_names, *, name=None):
    """A `keras.Model` sharing `model`'s layers whose outputs are `{feature: model.get_layer(layer).output}`
    for `layer_names` (`{feature: layer}`) and `"pooled"`: the input of `model`'s layer `"head"`, or
    `model`'s output where it has none."""
    if POOLED in layer_names:
        raise ValueError(f"{POOLED!r} names the head's input; name the stage features otherwise.")
    layer_names = {**layer_names, POOLED: None}
    names = {layer.name for layer in model.layers}
    missing = [layer for layer in layer_names.values() if layer is not None and layer not in names]
    if missing:
        raise ValueError(f"{model.name} has no layer {missing[0]!r}. Its layers: {', '.join(sorted(names))}.")
    outputs = {
        feature: _pooled(model, names) if layer is None else model.get_layer(layer).output
        for feature, layer in layer_names.items()
    }
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=name)


def _pooled(model, names):
    return model.get_layer("head").input if "head" in names else model.outputs[0]
