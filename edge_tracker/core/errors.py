"""Errors that end a node with one message saying what to fix (exit code 2)."""


class ConfigurationError(RuntimeError):
    """A node cannot start with what it was given; the message says what to fix."""
