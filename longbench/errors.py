"""Errors meant for the user: each renders as one line naming what was wrong and where."""

from __future__ import annotations

import string
from collections.abc import Callable
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


class SettingError(LongBenchError):
    """A bad setting. ``template`` names settings as ``{name}`` fields; ``str()`` renders them as the names,
    :meth:`render` with any spelling (the CLI uses its flags)."""

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = values
        super().__init__(self.render(lambda name: name))

    def render(self, spell: Callable[[str], str]) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        names = {name: spell(name) for name in fields if name not in self.values}
        return self.template.format(**names, **self.values)
