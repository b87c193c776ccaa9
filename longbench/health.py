"""Output health: what went wrong in a model's output, counted from the prediction lines themselves.

A prediction line may carry ``thinking`` (the reasoning kept apart from the answer, null when there was
none), ``finish_reason`` ("stop", "length", ...), ``prompt_tokens`` and ``completion_tokens``; all are
optional, so files written before these fields existed (and the reference's own) still score. Per line:

- ``thinking_unfinished``: thinking present (non-null) and no answer after it (the budget ran out inside
  the thinking, so the answer is empty);
- ``answer_truncated``: ``finish_reason`` "length" with an answer (cut at the token limit);
- ``empty``: an empty answer (whatever the reason);
- ``no_answer_extracted`` (LongBench v2): no letter read from the response by the extraction rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

HEALTH_KINDS: tuple[str, ...] = ("thinking_unfinished", "answer_truncated", "empty", "no_answer_extracted")


def line_health(
    line: Mapping[str, Any], answer: str, v2: bool = False, extracted: bool = True
) -> tuple[str, ...]:
    """The health problems of one prediction line whose answer is ``answer`` (its ``pred``, or v2's
    ``response``); ``extracted`` says whether v2's rule read a letter from it."""
    kinds = []
    empty = not answer.strip()
    if line.get("thinking") is not None and empty:
        kinds.append("thinking_unfinished")
    if line.get("finish_reason") == "length" and not empty:
        kinds.append("answer_truncated")
    if empty:
        kinds.append("empty")
    if v2 and not extracted:
        kinds.append("no_answer_extracted")
    return tuple(kinds)


def count_health(problems: Iterable[tuple[str, ...]], v2: bool = False) -> dict[str, int]:
    """Kind -> number of lines with it (every kind listed, zeros included; v2's extraction only for v2)."""
    kinds = HEALTH_KINDS if v2 else HEALTH_KINDS[:-1]
    counts = dict.fromkeys(kinds, 0)
    for line in problems:
        for kind in line:
            counts[kind] += 1
    return counts


def health_note(name: str, counts: Mapping[str, int]) -> str | None:
    """A table note for the non-zero counts of ``name`` (None when every count is zero)."""
    shown = [f"{kind} {n}" for kind, n in counts.items() if n]
    return f"{name}: output health: {', '.join(shown)}" if shown else None
