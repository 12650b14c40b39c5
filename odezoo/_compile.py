"""A function compiled by whichever Keras backend runs, so model code (in `keras.ops`) needs no
backend-specific line: what `Model.predict_on_batch` does for `call`, for any other method."""

import keras


def backend_compiled(fn, variables, *, xla=False):
    """`fn` (tensors in, tensors out; no Python-valued arguments) compiled by the Keras backend.

    TensorFlow: a `tf.function` (graph mode, `reduce_retracing`: new shapes relax to one trace); with
    `xla=True` also XLA-compiled (`jit_compile`, one compilation per input shape: worth it for a function
    that runs a whole loop per call, such as a greedy decode, whose per-op dispatch it removes).
    JAX: `jax.jit`, `variables` passed in at every call through a `keras.StatelessScope` (so weights
    assigned later are used, not ones baked in at tracing; one compilation per input shape). Torch:
    eager under `torch.no_grad()` (no autograd graph grows across calls). Other backends: `fn` itself.

    Args:
        fn: the function; it may read any of `variables`.
        variables: the Keras variables `fn` reads (a model's `variables`).
        xla: TensorFlow only (JAX always compiles with XLA).
    """
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True, jit_compile=xla or None)
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
