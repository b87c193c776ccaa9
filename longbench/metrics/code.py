"""code_sim: fuzzywuzzy's ``fuzz.ratio`` on its pure-Python (difflib) path, whatever is installed.

fuzzywuzzy switches to python-Levenshtein when that is importable, and the two disagree; the
published LongBench numbers come from the difflib path, so it is computed here directly.
"""

from __future__ import annotations

from difflib import SequenceMatcher


def first_code_line(prediction: str) -> str:
    """The first line (leading newlines stripped) without "`", "#" or "//"; "" when there is none."""
    for line in prediction.lstrip("\n").split("\n"):
        if "`" not in line and "#" not in line and "//" not in line:
            return line
    return ""


def fuzz_ratio(a: str, b: str) -> int:
    """``fuzz.ratio`` on difflib: 100 if equal (even both empty), 0 if one is empty, else rounded %."""
    if a == b:
        return 100
    if len(a) == 0 or len(b) == 0:
        return 0
    return int(round(100 * SequenceMatcher(None, a, b).ratio()))


def code_sim(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """Similarity of the prediction's first code line to the answer, in [0, 1]."""
    return fuzz_ratio(first_code_line(prediction), answer) / 100
