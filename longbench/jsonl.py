"""One line of a JSON-lines file: decoded and parsed, or one :class:`InputError` naming the file and line."""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

from longbench.errors import InputError


def parse_json_line(raw: bytes, where: str | PathLike[str], number: int, *, first: bool = False) -> Any:
    """The JSON value on line ``number`` (1-based) of ``where``; a byte-order mark is allowed on the first line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(where, f"not valid UTF-8 (byte {error.start + 1} of the line)", number) from None
    if first:
        text = text.removeprefix("\ufeff")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(where, f"invalid JSON: {error.msg} (column {error.colno})", number) from None
    except RecursionError:
        raise InputError(where, "invalid JSON: nested too deeply", number) from None
    except ValueError as error:  # e.g. an integer beyond Python's digit limit
        raise InputError(where, f"invalid JSON: {str(error).split(';')[0]}", number) from None
