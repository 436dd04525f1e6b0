"""User-facing errors: each carries one clear line saying what happened and what to do."""
from __future__ import annotations


class UserError(Exception):
    """An error the user caused and can fix; the CLI prints it as one line and exits 2."""


class DataError(UserError):
    """MNIST could not be fetched, verified or loaded."""


class SubmissionError(UserError):
    """The submission is unusable (missing, empty, no mlp.py, ...)."""


class ConfigError(UserError):
    """course.toml is missing a key or has a bad value."""


class IsolationError(UserError):
    """The machine offers less isolation than the course's ``[sandbox] minimum_isolation``."""
