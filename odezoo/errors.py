"""The one exception type for user-facing failures."""


class OdezooError(ValueError):
    """A failure the user can fix; its message says how. The CLI prints it on one line."""


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
