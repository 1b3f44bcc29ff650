"""The one exception type that the command line turns into a one-line message."""


class UserError(Exception):
    """Invalid input or environment that the user can fix.

    The message names the invalid value and the fix. The command line
    prints it without a traceback and exits with status 2.
    """
