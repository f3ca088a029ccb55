"""One error type for everything a user can get wrong: the CLI prints it as one line and exits 2."""


class ToolkitError(Exception):
    """A problem with the user's input, stated with its fix; never shown with a traceback."""
