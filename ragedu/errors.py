"""The one error type ragedu raises for a user's mistake or a damaged file.   (every notebook)

Every message is one sentence naming what was wrong and what is allowed. The command line prints it and exits
with code 2; any other exception is a bug and keeps its traceback. RagEduError subclasses ValueError, and its
file-shaped variant FileNotFoundError too, so `except ValueError` written before it existed still catches it.
"""


class RagEduError(ValueError):
    """A bad input or a damaged model directory, explained in one sentence."""


class RagEduFileNotFound(RagEduError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class CostWarning(UserWarning):
    """Work that may take minutes (RAG-Sequence thorough decoding at large K), stated before it starts."""
