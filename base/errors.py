"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class SoteRiskError(Exception):
    """A user-facing error: the message says what is wrong and where; no stack trace is shown."""

    exit_code = 2
