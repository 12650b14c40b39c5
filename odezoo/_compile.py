"""A function compiled by whichever Keras backend runs, so model code (in `keras.ops`) needs no
backend-specific line: what `Model.predict_on_batch` does for `call`, for any other method."""

import keras


def backend_compiled(fn, variables):
    """`fn` (tensors in, tensors out; no Python-valued arguments) compiled by the Keras backend.

    TensorFlow: a `tf.function` (graph mode, `reduce_retracing`: new shapes relax to one trace).
    JAX: `jax.jit`, `variables` passed in at every call through a `keras.StatelessScope` (so weights
    assigned later are used, not ones baked in at tracing; one compilation per input shape). Torch:
    eager under `torch.no_grad()` (no autograd graph grows across calls). Other backends: `fn` itself.

    Args:
        fn: the function; it may read any of `variables`.
        variables: the Keras variables `fn` reads (a model's `variables`).
    """
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        variables = list(variables)

        @jax.jit
        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        return lambda *args: stateless([v.value for v in variables], *args)
    if backend == "torch":
        import torch

        return torch.no_grad()(fn)
    return fn
