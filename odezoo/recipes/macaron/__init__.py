"""Recipes of the Macaron family (`models/macaron`): translation (`translation`), masked-LM pre-training
(`masked_lm`) and GLUE fine-tuning (`glue`), and what they share: fairseq's label-smoothed loss, the BERT
fork's Adam and the attention-head check. The learning-rate schedules are in `odezoo.training`.
"""

import keras
from keras import ops

from odezoo.errors import OdezooError
from odezoo.training import WarmupLinearDecay


@keras.saving.register_keras_serializable(package="odezoo")
class LabelSmoothedCrossEntropy(keras.losses.Loss):
    """fairseq's `label_smoothed_cross_entropy` per target token: `(1 - ε) · (-log p_y) + ε / V ·
    Σ_v (-log p_v)`, averaged over the tokens whose sample weight is 1 (padding has 0)."""

    def __init__(self, epsilon=0.1, name="label_smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, reduction="mean_with_sample_weight", **kwargs)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.cast(y_true, "int32")[..., None], -1), -1)
        smooth = -ops.mean(log_probs, axis=-1)
        return (1.0 - self.epsilon) * nll + self.epsilon * smooth

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def check_heads(config):
    """Raises unless `config.hidden_dim` is a multiple of `config.num_heads`."""
    if config.hidden_dim % config.num_heads:
        raise OdezooError(
            f"`hidden_dim` must be a multiple of `num_heads`. Received: hidden_dim={config.hidden_dim}, "
            f"num_heads={config.num_heads}"
        )


def bert_adam(config, total):
    """The BERT fork's optimizer for a run of `total` updates: Adam β = (0.9, 0.999), ε = 1e-6, decoupled
    weight decay `config.weight_decay`, the rate `config.learning_rate` reached after the first
    `config.warmup_ratio` of the updates, then decayed linearly to 0 (`WarmupLinearDecay`)."""
    warmup = int(config.warmup_ratio * total)
    schedule = WarmupLinearDecay(config.learning_rate, warmup, total, config.warmup_init_lr)
    decay = config.weight_decay or None
    return keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.999, epsilon=1e-6, weight_decay=decay)
