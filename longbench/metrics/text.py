"""The string metrics of LongBench: qa_f1, classification, retrieval, retrieval_zh and count.

Each is the reference's ``metrics.py`` function of the same name, including its arithmetic and
quirks (see the comments), computed for one prediction and one gold answer.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ASCII_PUNCTUATION = {ord(ch): None for ch in string.punctuation}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"\d+")
_PARAGRAPH_EN = re.compile(r"Paragraph (\d+)")
_PARAGRAPH_ZH = re.compile(r"段落(\d+)")


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, replace the articles a/an/the by spaces, collapse spaces."""
    text = text.lower().translate(_ASCII_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction_tokens: list[str], answer_tokens: list[str]) -> float:
    """Multiset F1 of two token lists, with the reference's exact float expression."""
    num_same = sum((Counter(prediction_tokens) & Counter(answer_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(answer_tokens)
    return (2 * precision * recall) / (precision + recall)


def qa_f1(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """Token F1 of the normalised prediction and answer (English QA)."""
    return token_f1(normalize_answer(prediction).split(), normalize_answer(answer).split())


def classification(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """1 / (number of matched classes) when the gold class is matched, else 0.

    A class matches when it occurs in the prediction. Then every match that is a substring of the
    gold label, but not the label itself, is removed, in one pass that mutates the list while
    walking it, as the reference does: the element right after a removed one is never examined.
    """
    if all_classes is None:
        raise ValueError("classification needs the task's list of classes (all_classes)")
    matches = [name for name in all_classes if name in prediction]
    position = 0
    while position < len(matches):  # a Python list iterator over a list shrinking under it
        term = matches[position]
        position += 1
        if term in answer and term != answer:
            matches.remove(term)  # first equal element, as list.remove does
    return 1.0 / len(matches) if answer in matches else 0.0


def _share_of(numbers: list[str], wanted: str) -> float:
    right = sum(1 for number in numbers if number == wanted)
    return 0.0 if len(numbers) == 0 else float(right / len(numbers))


def _gold_paragraph(pattern: re.Pattern[str], answer: str) -> str:
    found = pattern.findall(answer)
    if not found:
        raise ValueError(f"gold answer {answer[:60]!r} does not name a paragraph ({pattern.pattern!r})")
    return found[0]


def retrieval(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """Share of the numbers in the prediction that equal N of the answer's "Paragraph N"."""
    return _share_of(_NUMBER.findall(prediction), _gold_paragraph(_PARAGRAPH_EN, answer))


def retrieval_zh(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """Share of the numbers in the prediction that equal N of the answer's "段落N"."""
    return _share_of(_NUMBER.findall(prediction), _gold_paragraph(_PARAGRAPH_ZH, answer))


def count(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """Share of the numbers in the prediction that equal the answer."""
    return _share_of(_NUMBER.findall(prediction), answer)


def gold_problem(metric: str, answers: list[str], all_classes: list[str] | None) -> str | None:
    """Why ``metric`` could not score against this gold data (the reference would crash), or None."""
    if metric == "classification" and all_classes is None:
        return "'all_classes' must be the list of classes for a classification task"
    pattern = {"retrieval": _PARAGRAPH_EN, "retrieval_zh": _PARAGRAPH_ZH}.get(metric)
    if pattern is not None:
        for answer in answers:
            if not pattern.search(answer):
                return f"answer {answer[:40]!r} does not name a paragraph (expected {pattern.pattern!r})"
    return None
