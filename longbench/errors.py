"""Errors meant for the user: each renders as one line naming what was wrong and where."""

from __future__ import annotations

from os import PathLike


class LongBenchError(Exception):
    """An error whose message is a complete, single line for the user (the CLI prints it, no traceback)."""


class InputError(LongBenchError):
    """Bad input data or predictions, located at ``path`` (and ``line``, 1-based, when known)."""

    def __init__(self, path: str | PathLike[str], message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class UnknownTaskError(LongBenchError):
    """A task name that is not one of the 21 LongBench tasks."""
