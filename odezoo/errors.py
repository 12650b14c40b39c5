"""The one exception type for user-facing failures."""


class OdezooError(ValueError):
    """A failure the user can fix; its message says how. The CLI prints it on one line."""
