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
