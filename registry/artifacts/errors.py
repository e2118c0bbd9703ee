"""How a copy can fail: for good (the source is missing or unreadable) or for now (retry).

The copy task retries :class:`TransientError` with backoff and ends a version in
``FAILED_REGISTRATION`` on :class:`SourceError`, with the message as its ``status_message``.
"""

from __future__ import annotations


class ArtifactError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceError(ArtifactError):
    """The source is missing, empty, unreadable or not allowed: retrying will not help."""


class TransientError(ArtifactError):
    """The store or the source did not answer (network, 5xx, throttling, changed mid-copy)."""


class NotFoundError(ArtifactError):
    """No object or file at that key of the registry's store."""


class PathConflictError(ArtifactError):
    """A write names a folder of the store, or goes through a file as if it were a folder (a
    folder store; S3 keys are flat and never conflict)."""
