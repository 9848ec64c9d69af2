"""What start-up tells an operator: a problem to fix before the bot (or the local run) can start."""

from __future__ import annotations


class StartupError(RuntimeError):
    """A problem an operator must fix; its message says what, in one line."""
