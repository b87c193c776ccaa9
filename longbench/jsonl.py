"""One line of a JSON-lines file: decoded and parsed, or one :class:`InputError` naming the file and line.

JSON can spell a lone UTF-16 surrogate (``"\\ud800"``), which no UTF-8 file, tokenizer or HTTP body can carry.
One rule everywhere text comes in (data, predictions, a server's reply): each lone surrogate becomes U+FFFD,
the replacement character, so that a run always ends and every file written is valid UTF-8.
"""

from __future__ import annotations

import json
import re
from os import PathLike
from typing import Any

from longbench.errors import InputError

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` (a parsed JSON value or a string) with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, list):
        return [replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(key): replace_lone_surrogates(item) for key, item in value.items()}
    return value


def without_lone_surrogates(value: Any, text: str, start: int = 0, end: int | None = None) -> Any:
    """``value``, decoded from ``text[start:end]``, with lone surrogates replaced when that JSON spells any."""
    found = _ESCAPED_SURROGATE.search(text, start, len(text) if end is None else end)
    return replace_lone_surrogates(value) if found else value


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates replaced by U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(REPLACEMENT, text).encode("utf-8")


def parse_json_line(raw: bytes, where: str | PathLike[str], number: int, *, first: bool = False) -> Any:
    """The JSON value on line ``number`` (1-based) of ``where``; a byte-order mark is allowed on the first line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(where, f"not valid UTF-8 (byte {error.start + 1} of the line)", number) from None
    if first:
        text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(where, f"invalid JSON: {error.msg} (column {error.colno})", number) from None
    except RecursionError:
        raise InputError(where, "invalid JSON: nested too deeply", number) from None
    except ValueError as error:  # e.g. an integer beyond Python's digit limit
        raise InputError(where, f"invalid JSON: {str(error).split(';')[0]}", number) from None
    return without_lone_surrogates(value, text)
