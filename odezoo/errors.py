"""The one exception type for user-facing failures, the one warning type for what odezoo did that the
user may not expect (`warn`), and the argument checks every public function shares."""


class OdezooError(ValueError):
    """A failure the user can fix; its message says how. The CLI prints it on one line."""


class OdezooWarning(UserWarning):
    """What odezoo did to an input that the user may not expect (truncated, converted, capped), with
    the numbers that triggered it. The CLI prints it on one line."""


def warn(message, stacklevel=2):
    """Issues `message` as an `OdezooWarning` attributed to the caller's caller (`stacklevel`)."""
    import warnings

    warnings.warn(message, OdezooWarning, stacklevel=stacklevel + 1)


def check_integer(name, value, minimum=0):
    """`value` as an `int` if it is a whole number (not a bool, float or string) >= `minimum`, else raises
    `OdezooError` naming the argument `name`."""
    import operator

    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise OdezooError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r} ({type(value).__name__})"
        ) from None
    if number < minimum:
        raise OdezooError(f"`{name}` must be >= {minimum}. Received: {name}={number}")
    return number


def check_number(name, value, minimum=None):
    """`value` as a `float` if it is a finite real number (not a bool or string), >= `minimum` if given,
    else raises `OdezooError` naming the argument `name`."""
    import math
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise OdezooError(
            f"`{name}` must be a finite number. Received: {name}={value!r} ({type(value).__name__})"
        )
    if minimum is not None and value < minimum:
        raise OdezooError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")
    return float(value)


def check_dtype(dtype):
    """`dtype` if Keras takes it as a dtype policy (`None`, `"float32"`, `"mixed_bfloat16"`, a policy),
    else raises `OdezooError` saying what fits."""
    import keras

    try:
        floating = "float" in keras.dtype_policies.get(dtype).variable_dtype
    except (TypeError, ValueError):
        floating = False
    if not floating:
        raise OdezooError(
            f"`dtype` must be a float dtype or float dtype policy, e.g. 'float32', 'float64', 'bfloat16', "
            f"'mixed_float16' (or None: the model's own). Received: dtype={dtype!r}"
        )
    return dtype
