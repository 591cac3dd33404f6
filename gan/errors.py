"""Errors that reach users as one actionable line instead of a traceback."""


class GanError(Exception):
    """Base class: the message says what went wrong and what to do about it. `web`, where it differs, says so to a
    visitor of the app, who has no command line, environment or server files to act on (the app shows it)."""

    def __init__(self, message: str, web: str | None = None):
        super().__init__(message)
        self.web = web or message


class DataError(GanError):
    """The training data is missing, empty or unreadable."""


class CheckpointError(GanError):
    """An export folder or training checkpoint is missing, incomplete or inconsistent."""


class ImageInputError(GanError):
    """An uploaded or folder image cannot be used (names the file and the problem)."""


class HubError(GanError):
    """A Hugging Face Hub call failed (auth, access, not found, server, network); never names the token."""
