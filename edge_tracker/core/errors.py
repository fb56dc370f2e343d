"""Errors that end a node with one message saying what to fix (exit code 2)."""

# The exit code of a node that cannot run with its configuration. Launch stops respawning a node
# that exits with it (a respawn would fail the same way) and shuts down instead.
CONFIGURATION_EXIT_CODE = 2


class ConfigurationError(RuntimeError):
    """A node cannot start with what it was given; the message says what to fix."""
