"""The one record schema shared by all LongBench v1 and LongBench-E data, validated on load."""

from __future__ import annotations

from os import PathLike
from typing import Any, TypedDict

from longbench.errors import InputError


class Record(TypedDict):
    """One benchmark sample, exactly the eight fields of the released jsonl files."""

    input: str
    context: str
    answers: list[str]
    length: int
    dataset: str
    language: str
    all_classes: list[str] | None
    _id: str


FIELDS: tuple[str, ...] = (
    "input",
    "context",
    "answers",
    "length",
    "dataset",
    "language",
    "all_classes",
    "_id",
)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_CHECKS: dict[str, tuple[Any, str]] = {
    "input": (lambda v: isinstance(v, str), "a string"),
    "context": (lambda v: isinstance(v, str), "a string"),
    "answers": (lambda v: _is_str_list(v) and len(v) > 0, "a non-empty list of strings"),
    "length": (_is_int, "an integer"),
    "dataset": (lambda v: isinstance(v, str), "a string"),
    "language": (lambda v: isinstance(v, str), "a string"),
    "all_classes": (lambda v: v is None or _is_str_list(v), "null or a list of strings"),
    "_id": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
}


def validate_record(obj: Any, path: str | PathLike[str], line: int) -> Record:
    """Return ``obj`` as a :class:`Record`, or raise :class:`InputError` naming ``path`` and ``line``.

    Extra keys are dropped, so every record carries exactly the eight schema fields.
    """
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", line)
    for field, (check, expected) in _CHECKS.items():
        if field not in obj:
            raise InputError(path, f"missing field {field!r}", line)
        if not check(obj[field]):
            raise InputError(path, f"field {field!r} must be {expected}, got {obj[field]!r:.60}", line)
    return Record(**{field: obj[field] for field in FIELDS})  # type: ignore[typeddict-item]
