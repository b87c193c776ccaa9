"""LongBench v2's answer extraction (``result.py``): the letter a response chooses, by the official rule."""

from __future__ import annotations

import re

_PARENTHESISED = re.compile(r"The correct answer is \(([A-D])\)")
_BARE = re.compile(r"The correct answer is ([A-D])")


def extract_answer(response: str) -> str | None:
    """The letter the official rule reads from a response: ``*`` removed, the first ``(X)`` form, else the
    first bare form, else None (case-sensitive, ASCII A-D only)."""
    text = response.strip().replace("*", "")
    match = _PARENTHESISED.search(text) or _BARE.search(text)
    return match.group(1) if match else None
