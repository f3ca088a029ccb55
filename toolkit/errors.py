"""One error type for everything a user can get wrong: the CLI prints it as one line and exits 2."""

import re

# Control characters (a newline, a carriage return, a terminal escape) that a message may quote from a user's file
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ToolkitError(Exception):
    """A problem with the user's input, stated with its fix; never shown with a traceback."""

    def __str__(self) -> str:
        """One line, whatever names it quotes from a model or target file: control characters appear escaped."""
        return CONTROL.sub(lambda match: repr(match.group())[1:-1], super().__str__())
