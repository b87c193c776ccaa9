"""ROUGE-L F exactly as ``rouge`` 1.0.1's ``Rouge().get_scores([hyp], [ref], avg=True)["rouge-l"]["f"]``.

What the package does, reproduced here:

* each text is split into sentences on ``"."``; a piece is kept when it is non-empty *before*
  whitespace is collapsed (``" ".join(piece.split())``), so a whitespace-only piece becomes the
  sentence ``[""]``; words are the sentence split on ``" "``;
* no sentence on either side raises ``ValueError`` (from the ROUGE-1 step, which runs first);
* ``m`` / ``n`` are the numbers of *distinct* words of the reference / hypothesis;
* the overlap is the size of the union, over every (reference sentence, hypothesis sentence) pair,
  of the set of tokens on the LCS that the package's backtrack picks (:mod:`longbench.metrics.lcs`);
* ``f = 2 * (p * r / (p + r + 1e-8))`` with ``r = overlap / m`` and ``p = overlap / n``.

The backtrack is recursive in the package, so a pair whose backtrack nests more calls than the
interpreter allows raises ``RecursionError``, which LongBench's bare ``except`` turns into a score of
0.0. Measured on the reference ``eval.py`` run as a script (Python 3.11, recursion limit 1000), a
pair fails when the backtrack makes more than :data:`CALL_LIMIT_EN` nested calls (``rouge`` tasks)
or :data:`CALL_LIMIT_ZH` (``rouge_zh`` tasks, one frame deeper). Passing ``call_limit`` reproduces
that failure as :class:`RecursionLimitExceeded`; ``call_limit=None`` scores such pairs properly.
"""

from __future__ import annotations

from longbench.metrics.lcs import lcs_backtrack, lcs_rows, match_masks

CALL_LIMIT_EN = 991
CALL_LIMIT_ZH = 990


class RecursionLimitExceeded(Exception):
    """The reference's rouge backtrack would have overflowed Python's stack on this input."""


def split_sentences(text: str) -> list[list[str]]:
    """The word lists of ``text``'s sentences, as the ``rouge`` package forms them."""
    return [" ".join(piece.split()).split(" ") for piece in text.split(".") if len(piece) > 0]


class _Hypothesis:
    """One hypothesis sentence with its word set and (lazily) its match masks."""

    __slots__ = ("words", "word_set", "_masks")

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.word_set = set(words)
        self._masks: dict[str, int] | None = None

    @property
    def masks(self) -> dict[str, int]:
        if self._masks is None:
            self._masks = match_masks(self.words)
        return self._masks


def _pair_tokens(x: list[str], hyp: _Hypothesis) -> tuple[set[str], int]:
    """The LCS token set of reference sentence ``x`` and ``hyp``, and the backtrack's call count."""
    m = len(hyp.words)
    rows = lcs_rows(x, hyp.masks, m)
    return lcs_backtrack(x, hyp.masks, m, rows)


def _lcs_union(
    refs: list[list[str]], hyps: list[_Hypothesis], reachable: set[str], call_limit: int | None
) -> int:
    """Size of the union of all pairwise LCS token sets; raises if a pair exceeds ``call_limit``.

    The union does not depend on the order of the pairs, and an LCS uses only words common to its
    pair, so pairs sharing the most words go first and a pair is skipped once its common words
    are all in the union (or the union holds every shared word). The backtrack makes at most
    ``len(x) + len(y)`` calls (exactly ``len(y) + 1`` when the pair shares no word), so only
    longer pairs are checked against ``call_limit``, all of them.
    """
    union: set[str] = set()
    pending: list[tuple[set[str], list[str], _Hypothesis]] = []
    for x in refs:
        x_set = set(x) & reachable
        for hyp in hyps:
            common = x_set & hyp.word_set
            if call_limit is not None and len(x) + len(hyp.words) > call_limit:
                tokens, calls = _pair_tokens(x, hyp) if common else (set(), len(hyp.words) + 1)
                if calls > call_limit:
                    raise RecursionLimitExceeded
                union |= tokens
            elif common:
                pending.append((common, x, hyp))
    pending.sort(key=lambda entry: len(entry[0]), reverse=True)
    for common, x, hyp in pending:
        if len(union) == len(reachable):
            break
        if common <= union:
            continue
        if len(common) == 1:
            union |= common  # an LCS of length >= 1 drawn from a single common word
        else:
            union |= _pair_tokens(x, hyp)[0]
    return len(union)


def rouge_l_f(hypothesis: str, reference: str, call_limit: int | None = CALL_LIMIT_EN) -> float:
    """ROUGE-L F of ``hypothesis`` against ``reference``, bit-for-bit the ``rouge`` package's value.

    Raises ``ValueError`` where the package raises (no sentence on a side) and
    :class:`RecursionLimitExceeded` where its backtrack would exceed ``call_limit`` nested calls.
    """
    hyp_sentences = split_sentences(hypothesis)
    ref_sentences = split_sentences(reference)
    if not hyp_sentences:
        raise ValueError("Hypothesis is empty.")
    if not ref_sentences:
        raise ValueError("Reference is empty.")
    ref_words = {word for sentence in ref_sentences for word in sentence}
    hyp_words = {word for sentence in hyp_sentences for word in sentence}
    hyps = [_Hypothesis(words) for words in hyp_sentences]
    llcs = _lcs_union(ref_sentences, hyps, ref_words & hyp_words, call_limit)
    m = len(ref_words)
    n = len(hyp_words)
    r_lcs = llcs / m
    p_lcs = llcs / n
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))
